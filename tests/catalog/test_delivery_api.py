import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone, translation

from tests.catalog import delivery_world as world
from tests.conftest import user_of
from weiying.api.tokens import issue_token
from weiying.catalog.models import DeliveryOrder
from weiying.core.models import AuditLog, DomainEvent
from weiying.org.models import Role

pytestmark = pytest.mark.django_db

contract, goods, ops = world.contract, world.goods, world.ops
BASE = "/api/delivery-orders"
TODAY = timezone.localdate()
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def erp(company):
    """A client with an API token that acts as operations (the ERP/WMS)."""
    _token, raw = issue_token(actor=user_of(company.admin), name="WMS",
                              user=user_of(company.operations),
                              role=Role.objects.get(code="operations"))
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")


def put(client, external_id, body):
    return client.put(f"{BASE}/by-external/{external_id}", json.dumps(body),
                      content_type="application/json")


def post(client, body):
    return client.post(BASE, json.dumps(body), content_type="application/json")


def counts():
    return (AuditLog.objects.filter(object_type="catalog.deliveryorder").count(),
            DomainEvent.objects.filter(name__startswith="delivery_order.").count())


def test_the_erp_creates_an_order_and_a_repeat_returns_it(erp, contract, goods):
    box = world.line_of(contract, goods.box)
    body = {"contract_id": contract.pk, "external_id": "WMS-1",
            "lines": [{"contract_line_id": box.pk, "quantity": "3"}],
            "promised_on": (TODAY + 2 * DAY).isoformat()}

    first = post(erp, body)
    again = post(erp, body)

    assert first.status_code == 201, first.content
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    data = first.json()
    assert data["lines"] == [{"contract_line_id": box.pk, "product_id": goods.box.pk,
                              "product_code": "D-BOX", "product_name": "智能柜",
                              "quantity": "3.000"}]
    assert data["allowed_actions"] == ["ship", "cancel"]
    assert DeliveryOrder.objects.count() == 1 and counts() == (1, 1)


def test_a_status_update_sent_twice_changes_nothing_the_second_time(erp, ops, contract):
    post(erp, {"contract_id": contract.pk, "external_id": "WMS-2"})
    update = {"status": "shipped", "shipped_on": (TODAY - DAY).isoformat(),
              "carrier": "顺丰", "tracking_number": "SF1001"}

    first = put(erp, "WMS-2", update)
    after_first = counts()
    second = put(erp, "WMS-2", update)

    assert first.status_code == 200, first.content
    assert first.json()["changed"] is True and second.json()["changed"] is False
    assert first.json()["order"] == second.json()["order"]
    assert counts() == after_first == (2, 2)  # create + ship: one audit row, one event each
    order = DeliveryOrder.objects.get(external_id="WMS-2")
    assert (order.status, order.tracking_number) == ("shipped", "SF1001")


def test_an_update_can_jump_ahead_through_the_steps_between(erp, contract):
    post(erp, {"contract_id": contract.pk, "external_id": "WMS-3"})

    response = put(erp, "WMS-3", {
        "status": "accepted", "shipped_on": (TODAY - 3 * DAY).isoformat(),
        "accepted_on": (TODAY - DAY).isoformat(), "acceptance_kind": "receipt",
        "evidence_url": "https://wms.example.com/pod/3"})
    repeat = put(erp, "WMS-3", {"status": "accepted", "accepted_on": (TODAY - DAY).isoformat(),
                                "acceptance_kind": "receipt"})

    assert response.status_code == 200, response.content
    order = response.json()["order"]
    assert (order["status"], order["delivered_on"]) == ("accepted", (TODAY - DAY).isoformat())
    assert repeat.json()["changed"] is False
    names = list(DomainEvent.objects.filter(name__startswith="delivery_order.")
                 .order_by("pk").values_list("name", flat=True))
    assert names == ["delivery_order.created", "delivery_order.shipped",
                     "delivery_order.delivered", "delivery_order.accepted"]
    contract.refresh_from_db()
    assert contract.accepted_on == TODAY - DAY  # everything deliverable was on this order


def test_a_conflicting_update_is_refused_with_a_clear_error(erp, contract):
    post(erp, {"contract_id": contract.pk, "external_id": "WMS-4"})
    put(erp, "WMS-4", {"status": "accepted", "accepted_on": TODAY.isoformat(),
                       "acceptance_kind": "inspection", "evidence_note": "验收报告"})
    before = counts()

    backwards = put(erp, "WMS-4", {"status": "shipped", "shipped_on": TODAY.isoformat()})
    other_date = put(erp, "WMS-4", {"status": "accepted",
                                    "accepted_on": (TODAY - DAY).isoformat()})
    cancel = put(erp, "WMS-4", {"status": "cancelled"})

    assert backwards.status_code == 409
    order = DeliveryOrder.objects.get(external_id="WMS-4")
    assert backwards.json() == {
        "code": "conflicting_update",
        "message": f"Delivery order {order.number} is already accepted; it cannot become "
                   "shipped. An update may only move an order forward (planned → shipped → "
                   "delivered → accepted) or cancel it before acceptance."}
    assert other_date.status_code == 409 and other_date.json()["code"] == "conflicting_update"
    assert other_date.json()["field"] == "accepted_on"
    assert cancel.status_code == 409
    assert counts() == before


def test_bad_updates_are_refused_and_nothing_written(erp, contract):
    post(erp, {"contract_id": contract.pk, "external_id": "WMS-5"})
    before = counts()

    future = put(erp, "WMS-5", {"status": "shipped",
                                "shipped_on": (TODAY + DAY).isoformat()})
    unknown = put(erp, "WMS-5", {"status": "lost"})
    no_kind = put(erp, "WMS-5", {"status": "accepted", "accepted_on": TODAY.isoformat(),
                                 "evidence_note": "x"})

    assert (future.status_code, future.json()["code"]) == (400, "date_in_future")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_status")
    # The walk to accepted shipped and delivered first: all of it rolled back.
    assert (no_kind.status_code, no_kind.json()["code"]) == (400, "invalid_kind")
    assert counts() == before
    assert DeliveryOrder.objects.get(external_id="WMS-5").status == "planned"


def test_an_unknown_external_id_is_a_404(erp):
    response = put(erp, "NOPE", {"status": "shipped", "shipped_on": TODAY.isoformat()})
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_api_needs_a_token_or_a_session(contract):
    anonymous = Client()
    assert anonymous.get(BASE).status_code == 401
    assert put(anonymous, "X", {"status": "shipped"}).status_code == 401
    bad = Client(HTTP_AUTHORIZATION="Bearer wy_not-a-token")
    assert bad.get(BASE).status_code == 401


def test_a_token_without_delivery_manage_cannot_update(company, erp, contract):
    post(erp, {"contract_id": contract.pk, "external_id": "WMS-6"})
    _token, raw = issue_token(actor=user_of(company.admin), name="BI",
                              user=user_of(company.finance), role=Role.objects.get(code="finance"))
    finance = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = put(finance, "WMS-6", {"status": "shipped", "shipped_on": TODAY.isoformat()})

    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert DeliveryOrder.objects.get(external_id="WMS-6").status == "planned"


def test_a_rep_sees_only_their_own_contracts_orders(company, erp, login, contract, goods):
    other = world.signed(company, goods, company.rep_b, title="北京合同")
    mine = post(erp, {"contract_id": contract.pk}).json()
    theirs = post(erp, {"contract_id": other.pk}).json()

    rep_a = login(company.rep_a)
    listed = [o["id"] for o in rep_a.get(BASE).json()["items"]]

    assert listed == [mine["id"]]
    assert rep_a.get(f"{BASE}/{theirs['id']}").status_code == 404
    assert rep_a.get(f"{BASE}/{mine['id']}").status_code == 200
    assert post(login(company.rep_b), {"contract_id": contract.pk}).status_code == 404


def test_the_list_filters_late_orders(erp, contract):
    late = post(erp, {"contract_id": contract.pk, "lines": None,
                      "promised_on": (TODAY - 2 * DAY).isoformat()}).json()

    listed = erp.get(BASE, {"late": "true"}).json()["items"]

    assert [o["id"] for o in listed] == [late["id"]]
    assert erp.get(BASE, {"status": "shipped"}).json()["items"] == []


def test_the_erp_names_the_warehouse_by_its_code(erp, contract):
    from weiying.catalog.models import Warehouse

    warehouse = Warehouse.objects.create(code="WH-SH", name="上海仓")
    post(erp, {"contract_id": contract.pk, "external_id": "WMS-7"})

    shipped = put(erp, "WMS-7", {"status": "shipped", "shipped_on": TODAY.isoformat(),
                                 "warehouse_code": "WH-SH"})
    unknown = post(erp, {"contract_id": contract.pk, "warehouse_code": "WH-NONE"})

    assert shipped.json()["order"]["warehouse_code"] == "WH-SH"
    event = DomainEvent.objects.get(name="delivery_order.shipped")
    assert event.data["warehouse_id"] == warehouse.pk
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_warehouse")
