import pytest
from django.test import Client

from tests.pipeline.opportunities.factories import make_customer, make_product, stages

pytestmark = pytest.mark.django_db

URL = "/api/opportunities"


@pytest.fixture
def customer(company):
    return make_customer(company.rep_a)


def _create(client, customer, **extra):
    body = {"customer_id": customer.pk, "name": "API 商机", **extra}
    return client.post(URL, body, content_type="application/json")


def test_create_returns_201_with_lines_and_history(company, customer, login, clock):
    product = make_product()

    response = _create(login(company.rep_a), customer,
                       lines=[{"product_id": product.pk, "quantity": "2", "amount": "300.10"}])

    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == "300.10"
    assert body["stage_name"] == "初步接洽"
    assert body["lines"] == [{"product_id": product.pk, "product_name": product.name,
                              "quantity": "2.000", "amount": "300.10"}]
    assert [h["stage_name"] for h in body["history"]] == ["初步接洽"]
    assert body["history"][0]["current"] is True


def test_create_for_invisible_customer_is_404(company, customer, login, clock):
    response = _create(login(company.rep_b), customer)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_create_without_permission_is_403(company, customer, login, clock):
    response = _create(login(company.finance), customer)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_create_with_missing_name_is_422(company, customer, login, clock):
    response = login(company.rep_a).post(URL, {"customer_id": customer.pk},
                                         content_type="application/json")

    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["field"] == "name"


def test_unauthenticated_is_401(db):
    assert Client().get(URL).status_code == 401


def test_get_is_scoped(company, customer, login, clock):
    opp_id = _create(login(company.rep_a), customer).json()["id"]

    assert login(company.manager_a).get(f"{URL}/{opp_id}").status_code == 200
    response = login(company.rep_b).get(f"{URL}/{opp_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_move_won_lost_reopen_codes(company, customer, login, clock):
    client = login(company.rep_a)
    opp_id = _create(client, customer).json()["id"]
    s = stages()

    to_won = client.post(f"{URL}/{opp_id}/move", {"stage_id": s["赢单"].pk},
                         content_type="application/json")
    moved = client.post(f"{URL}/{opp_id}/move", {"stage_id": s["商务谈判"].pk},
                        content_type="application/json")
    bad_lost = client.post(f"{URL}/{opp_id}/lost", {"reason": "other"},
                           content_type="application/json")
    lost = client.post(f"{URL}/{opp_id}/lost", {"reason": "competitor", "note": "友商低价"},
                       content_type="application/json")
    won_again = client.post(f"{URL}/{opp_id}/won", {}, content_type="application/json")
    reopened = client.post(f"{URL}/{opp_id}/reopen")

    assert (to_won.status_code, to_won.json()["code"]) == (409, "invalid_transition")
    assert (moved.status_code, moved.json()["stage_name"]) == (200, "商务谈判")
    assert (bad_lost.status_code, bad_lost.json()["code"], bad_lost.json()["field"]) == (
        400, "invalid", "note")
    assert (lost.status_code, lost.json()["status"], lost.json()["lost_reason"]) == (
        200, "lost", "competitor")
    assert (won_again.status_code, won_again.json()["code"]) == (409, "invalid_transition")
    assert (reopened.status_code, reopened.json()["stage_name"]) == (200, "商务谈判")
    assert [h["stage_name"] for h in reopened.json()["history"]] == [
        "初步接洽", "商务谈判", "输单", "商务谈判"]


def test_list_filters_and_pages(company, login, clock):
    client = login(company.rep_a)
    for i in range(3):
        _create(client, make_customer(company.rep_a, name=f"客户{i}"), amount=str(100 * (i + 1)))
    make_customer(company.rep_b)

    first = client.get(URL, {"sort": "-amount", "size": 2}).json()
    second = client.get(URL, {"sort": "-amount", "size": 2,
                              "cursor": first["next_cursor"]}).json()

    assert [o["amount"] for o in first["items"]] == ["300.00", "200.00"]
    assert [o["amount"] for o in second["items"]] == ["100.00"]
    assert second["next_cursor"] is None
    assert login(company.rep_b).get(URL).json()["items"] == []
    assert client.get(URL, {"sort": "bogus"}).status_code == 400


def test_pipelines_list(company, login):
    body = login(company.rep_a).get(f"{URL}/pipelines").json()

    default = next(p for p in body if p["is_default"])
    assert [(s["name"], s["probability"], s["kind"]) for s in default["stages"]] == [
        ("初步接洽", 10, "open"), ("需求确认", 25, "open"), ("方案报价", 50, "open"),
        ("商务谈判", 75, "open"), ("赢单", 100, "won"), ("输单", 0, "lost")]
