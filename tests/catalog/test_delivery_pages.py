import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.catalog import delivery_world as world
from weiying.catalog import delivery_services as svc
from weiying.catalog.models import DeliveryOrder
from weiying.core.models import AuditLog

pytestmark = pytest.mark.django_db

contract, goods, ops = world.contract, world.goods, world.ops
TODAY = timezone.localdate()
DAY = dt.timedelta(days=1)


def test_the_contract_page_lists_its_orders_and_offers_a_new_one(company, login, contract,
                                                                 ops):
    order = svc.create_delivery_order(actor=ops, contract=contract)

    page = login(company.operations).get(f"/pipeline/contracts/{contract.pk}/")
    body = page.content.decode()

    assert page.status_code == 200
    assert order.number in body and "交付单" in body
    assert f"/catalog/contracts/{contract.pk}/deliveries/new/" in body
    # A manager sees the orders but is neither the owner nor operations: no button.
    body = login(company.manager_a).get(f"/pipeline/contracts/{contract.pk}/").content.decode()
    assert order.number in body and "/deliveries/new/" not in body


def test_the_create_form_lists_what_is_left_and_makes_a_partial_order(company, login,
                                                                     contract, goods):
    client = login(company.rep_a, language="en")  # the contract's owner may make one
    box = world.line_of(contract, goods.box)
    url = f"/catalog/contracts/{contract.pk}/deliveries/new/"

    form = client.get(url)
    assert form.status_code == 200
    assert f'name="qty_{box.pk}" value="10"' in form.content.decode()
    assert "A service: no delivery order" in form.content.decode()
    setup = world.line_of(contract, goods.setup)
    response = client.post(url, {f"qty_{box.pk}": "4", f"qty_{setup.pk}": "",
                                 "promised_on": (TODAY + 5 * DAY).isoformat()})

    order = DeliveryOrder.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/catalog/deliveries/{order.pk}/"
    assert [(line.contract_line_id, line.quantity) for line in order.lines.all()] == [
        (box.pk, 4)]
    too_many = client.post(url, {f"qty_{box.pk}": "7"})
    assert too_many.status_code == 200
    assert "10 sold and 4 already on delivery orders" in too_many.content.decode()
    assert DeliveryOrder.objects.count() == 1


def test_a_rep_of_another_team_gets_a_404(company, login, contract, ops):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    client = login(company.rep_b)

    assert client.get(f"/catalog/deliveries/{order.pk}/").status_code == 404
    assert client.get(f"/catalog/contracts/{contract.pk}/deliveries/new/").status_code == 404
    assert client.get(f"/m/deliveries/{order.pk}/").status_code == 404
    assert order.number not in client.get("/catalog/deliveries/").content.decode()
    response = client.post(f"/catalog/deliveries/{order.pk}/do/cancel/", {"reason": "x"})
    assert response.status_code == 404
    assert DeliveryOrder.objects.get(pk=order.pk).status == "planned"


@pytest.mark.parametrize(("language", "words"), [
    (None, ["交付单", "计划中", "延迟"]), ("en", ["Delivery orders", "Planned", "Late"])])
def test_the_desk_list_renders_in_both_languages(company, login, contract, ops, language,
                                                 words):
    order = svc.create_delivery_order(actor=ops, contract=contract,
                                      promised_on=TODAY - 2 * DAY)
    client = login(company.operations, language=language)

    page = client.get("/catalog/deliveries/", {"late": "1"})
    detail = client.get(f"/catalog/deliveries/{order.pk}/")

    body = page.content.decode()
    assert page.status_code == 200 and order.number in body
    for word in words:
        assert word in body, word
    assert detail.status_code == 200 and 'data-action="ship"' in detail.content.decode()


def test_the_list_exports_for_those_who_may_export(company, login, contract, ops):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    assert login(company.rep_b).get("/catalog/deliveries/", {"export": "csv"}).status_code == 403

    response = login(company.manager_a).get("/catalog/deliveries/", {"export": "csv"})

    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and order.number in body
    assert AuditLog.objects.filter(action="export",
                                   object_type="catalog.deliveryorder").count() == 1


def test_operations_ship_and_accept_from_the_desk_with_an_evidence_file(
        company, login, contract, ops, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    order = svc.create_delivery_order(actor=ops, contract=contract)
    client = login(company.operations, language="en")
    base = f"/catalog/deliveries/{order.pk}"

    client.post(f"{base}/do/ship/", {"shipped_on": (TODAY - 2 * DAY).isoformat(),
                                     "carrier": "顺丰", "tracking_number": "SF9"})
    client.post(f"{base}/do/deliver/", {"delivered_on": (TODAY - DAY).isoformat()})
    response = client.post(f"{base}/do/accept/", {
        "accepted_on": TODAY.isoformat(), "kind": "receipt", "evidence_note": "客户签字",
        "evidence_file": SimpleUploadedFile("pod.png", b"\x89PNG test")})

    order.refresh_from_db()
    assert response.status_code == 302
    assert (order.status, order.tracking_number, order.evidence_note) == (
        "accepted", "SF9", "客户签字")
    download = client.get(f"{base}/evidence/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"\x89PNG test"
    assert login(company.rep_b).get(f"{base}/evidence/").status_code == 404


def test_a_refused_step_shows_the_reason_on_the_page(company, login, contract, ops):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    client = login(company.operations, language="en")

    response = client.post(f"/catalog/deliveries/{order.pk}/do/ship/",
                           {"shipped_on": (TODAY + DAY).isoformat()}, follow=True)

    assert "is in the future" in response.content.decode()
    assert DeliveryOrder.objects.get(pk=order.pk).status == "planned"


@pytest.mark.parametrize(("language", "words"), [
    (None, ["发货", "运单号"]), ("en", ["Ship", "Tracking number"])])
def test_the_phone_page_renders_in_both_languages(company, login, contract, ops, language,
                                                  words):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    client = login(company.operations, language=language)

    listing = client.get("/m/deliveries/")
    page = client.get(f"/m/deliveries/{order.pk}/")

    assert listing.status_code == 200 and order.number in listing.content.decode()
    body = page.content.decode()
    assert page.status_code == 200 and "weui" in body
    for word in words:
        assert word in body, word


def test_operations_ship_deliver_and_accept_on_the_phone(company, login, contract, ops):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    client = login(company.operations)
    base = f"/m/deliveries/{order.pk}"

    client.post(f"{base}/ship/", {"shipped_on": TODAY.isoformat(), "tracking_number": "YT1"})
    client.post(f"{base}/deliver/", {"delivered_on": TODAY.isoformat()})
    response = client.post(f"{base}/accept/", {"accepted_on": TODAY.isoformat(),
                                               "kind": "inspection", "evidence_note": "已验收"})

    assert response.status_code == 302 and response["Location"] == f"{base}/"
    order.refresh_from_db()
    assert (order.status, order.acceptance_kind, order.evidence_note) == (
        "accepted", "inspection", "已验收")
    contract.refresh_from_db()
    assert contract.accepted_on == TODAY


def test_the_owner_sees_the_phone_page_without_the_steps(company, login, contract, ops):
    order = svc.create_delivery_order(actor=ops, contract=contract)

    body = login(company.rep_a).get(f"/m/deliveries/{order.pk}/").content.decode()

    assert order.number in body and "data-action=" not in body


def test_the_list_costs_the_same_queries_for_more_rows(company, login, goods, ops):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(company.operations)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/catalog/deliveries/").status_code == 200
        return len(ctx.captured_queries)

    for _ in range(2):
        svc.create_delivery_order(actor=ops, contract=world.signed(company, goods, company.rep_a))
    few = queries()
    for _ in range(4):
        svc.create_delivery_order(actor=ops, contract=world.signed(company, goods, company.rep_b))
    assert queries() == few
