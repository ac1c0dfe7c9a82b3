import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db


def queries(client, path):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def add_signed(company, make_contract, n):
    t = timezone.localdate()
    for _ in range(n):
        contract = make_contract("signed")
        svc.plan_instalments(actor=user_of(company.rep_a), contract=contract, plan=[
            (t - dt.timedelta(days=1), "1000.00"), (t + dt.timedelta(days=9), "1000.00")])


@pytest.mark.parametrize("path", [
    reverse("pipeline:contract_list"), reverse("pipeline:receivables"), "/api/contracts",
    "/api/contracts/receivables",
])
def test_list_pages_cost_the_same_for_more_rows(company, login, make_contract, path):
    add_signed(company, make_contract, 2)
    client = login(company.manager_a)
    few = queries(client, path)
    add_signed(company, make_contract, 4)
    assert queries(client, path) == few
