import datetime as dt

import pytest

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import NOW, make_customer, make_lead
from weiying.pipeline.services.followups import log_followup

pytestmark = pytest.mark.django_db

URL = "/api/followups"


def test_create_returns_201(company, clock, login):
    customer = make_customer(company.rep_a)

    response = login(company.rep_a).post(URL, {
        "customer_id": customer.pk, "kind": "call", "note": "电话",
        "next_at": "2025-03-12T10:00:00+08:00",
    }, content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    assert (body["customer_id"], body["owner_name"], body["kind"]) == (customer.pk, "李销售",
                                                                       "call")
    assert body["next_at"].startswith("2025-03-12T")


def test_create_for_lead_sets_first_response(company, clock, login):
    lead = make_lead(company.rep_a, assigned_at=NOW - dt.timedelta(seconds=90))

    response = login(company.rep_a).post(URL, {"lead_id": lead.pk, "kind": "wechat",
                                               "note": "加微信"},
                                         content_type="application/json")

    assert response.status_code == 201
    lead.refresh_from_db()
    assert lead.first_response_seconds == 90


def test_create_on_invisible_customer_is_404(company, clock, login):
    customer = make_customer(company.rep_a)

    response = login(company.rep_b).post(URL, {"customer_id": customer.pk, "kind": "call",
                                               "note": "x"}, content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_create_in_the_future_is_400(company, clock, login):
    customer = make_customer(company.rep_a)

    response = login(company.rep_a).post(URL, {
        "customer_id": customer.pk, "kind": "call", "note": "x",
        "at": "2025-03-11T10:00:00+08:00",
    }, content_type="application/json")

    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid", "at")


def test_list_and_due_are_scoped(company, clock, login):
    a = make_customer(company.rep_a, name="甲")
    b = make_customer(company.rep_b, name="乙")
    log_followup(actor=user_of(company.rep_a), kind="call", note="甲1", customer=a,
                 at=NOW - dt.timedelta(hours=3), next_at=NOW - dt.timedelta(hours=1))
    log_followup(actor=user_of(company.rep_a), kind="visit", note="甲2", customer=a,
                 next_at=NOW + dt.timedelta(hours=2))
    log_followup(actor=user_of(company.rep_b), kind="call", note="乙1", customer=b,
                 at=NOW - dt.timedelta(hours=3), next_at=NOW - dt.timedelta(hours=1))
    client = login(company.rep_a)

    listed = client.get(URL).json()["items"]
    visits = client.get(URL, {"kind": "visit"}).json()["items"]
    due_now = client.get(f"{URL}/due").json()["items"]
    due_soon = client.get(f"{URL}/due", {"within_hours": 3}).json()["items"]

    assert [f["note"] for f in listed] == ["甲2", "甲1"]
    assert [f["note"] for f in visits] == ["甲2"]
    # 甲1's plan was superseded by 甲2, so only 甲2's plan is open.
    assert due_now == []
    assert [f["note"] for f in due_soon] == ["甲2"]
    assert [f["note"] for f in login(company.rep_b).get(f"{URL}/due").json()["items"]] == ["乙1"]
