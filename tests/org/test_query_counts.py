import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import user_of
from weiying.org import services

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1)


def queries(client, path):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def grow(company, n):
    """n more teams under the east branch, each with a head and a rep reporting to the rep
    before it (so the reporting line gets deeper too)."""
    admin = user_of(company.admin)
    leader = company.rep_a
    for _ in range(n):
        index = next(_numbers)
        team = services.create_department(actor=admin, name=f"扩编{index}组", parent=company.east)
        head = services.create_employee(actor=admin, number=f"G{index:03d}H", name=f"组长{index}",
                                        department=team, leader=company.manager_a,
                                        phone=f"139{index:08d}")
        services.update_department(actor=admin, department=team, name=team.name, kind="team",
                                   city="", region="", manager=head)
        leader = services.create_employee(actor=admin, number=f"G{index:03d}R",
                                          name=f"新人{index}", department=team, leader=leader)
    return leader


@pytest.mark.parametrize("persona", ["admin", "director"])
@pytest.mark.parametrize("page", ["org:chart", "org:employee_list"])
def test_org_pages_cost_the_same_for_more_rows(company, login, persona, page):
    grow(company, 2)
    client = login(getattr(company, persona))
    few = queries(client, reverse(page))

    grow(company, 5)

    assert queries(client, reverse(page)) == few


def test_the_employee_page_costs_the_same_for_a_longer_chain_and_more_reports(company, login):
    client = login(company.admin)
    deepest = grow(company, 2)
    few = queries(client, reverse("org:employee_detail", args=[deepest.pk]))
    many_reports = queries(client, reverse("org:employee_detail", args=[company.manager_a.pk]))

    deeper = grow(company, 6)

    assert queries(client, reverse("org:employee_detail", args=[deeper.pk])) == few
    assert queries(client, reverse("org:employee_detail",
                                   args=[company.manager_a.pk])) == many_reports


def test_the_roster_export_costs_the_same_for_more_rows(company, login):
    client = login(company.director)
    grow(company, 2)

    def export_queries():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("org:employee_list"), {"export": "csv"})
            b"".join(response.streaming_content)
        return len(ctx.captured_queries)

    few = export_queries()
    grow(company, 5)

    assert export_queries() == few
