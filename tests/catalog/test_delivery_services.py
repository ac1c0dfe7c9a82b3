import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation

from tests.catalog import delivery_world as world
from tests.conftest import user_of
from weiying.catalog import delivery_services as svc
from weiying.catalog.models import DeliveryLine, DeliveryOrder
from weiying.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent

pytestmark = pytest.mark.django_db

# The fixtures, by name.
contract, goods, ops = world.contract, world.goods, world.ops
line_of, signed = world.line_of, world.signed

TODAY = timezone.localdate()
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def boxes(contract, goods, quantity):
    return [{"contract_line": line_of(contract, goods.box).pk, "quantity": quantity}]


def test_a_partial_delivery_takes_some_of_a_line_and_leaves_the_rest(ops, contract, goods):
    order = svc.create_delivery_order(actor=ops, contract=contract,
                                      lines=boxes(contract, goods, "4"),
                                      promised_on=TODAY + 3 * DAY)

    assert order.number.startswith(f"DO{TODAY:%Y%m}") and order.status == "planned"
    assert (order.owner_id, order.department_id) == (contract.owner_id, contract.department_id)
    progress = {p.line.product.code: p for p in svc.line_progress(contract)}
    assert (progress["D-BOX"].sold, progress["D-BOX"].ordered, progress["D-BOX"].remaining) == (
        Decimal("10"), Decimal("4"), Decimal("6"))
    assert progress["D-SAAS"].deliverable is False and progress["D-SAAS"].remaining == 0
    second = svc.create_delivery_order(actor=ops, contract=contract,
                                       lines=boxes(contract, goods, "6"))
    assert second.number != order.number
    assert AuditLog.objects.filter(action="delivery_order.create").count() == 2


def test_no_lines_means_everything_still_open_on_goods_and_milestones(ops, contract, goods):
    svc.create_delivery_order(actor=ops, contract=contract, lines=boxes(contract, goods, "3"))

    order = svc.create_delivery_order(actor=ops, contract=contract)

    got = {line.contract_line.product.code: line.quantity for line in order.lines.all()}
    assert got == {"D-BOX": Decimal("7"), "D-SET": Decimal("1")}
    with pytest.raises(ValidationFailed) as exc:
        svc.create_delivery_order(actor=ops, contract=contract)
    assert exc.value.code == "nothing_to_deliver"


def test_delivering_more_than_was_sold_is_refused_and_nothing_written(ops, contract, goods):
    svc.create_delivery_order(actor=ops, contract=contract, lines=boxes(contract, goods, "7"))
    orders = DeliveryOrder.objects.count()

    with pytest.raises(ValidationFailed) as exc:
        svc.create_delivery_order(actor=ops, contract=contract, lines=boxes(contract, goods, "4"))

    assert exc.value.code == "over_delivery" and exc.value.field == "lines.0.quantity"
    assert str(exc.value.message) == (
        "Contract line 1 (智能柜): 10 sold and 7 already on delivery orders, so at most 3 more "
        "can be delivered, not 4.")
    assert DeliveryOrder.objects.count() == orders


def test_a_cancelled_order_frees_its_quantity(ops, contract, goods):
    first = svc.create_delivery_order(actor=ops, contract=contract,
                                      lines=boxes(contract, goods, "10"))
    svc.cancel_delivery_order(actor=ops, order=first, reason="客户改期")

    again = svc.create_delivery_order(actor=ops, contract=contract,
                                      lines=boxes(contract, goods, "10"))

    assert again.lines.get().quantity == Decimal("10")


def test_service_lines_take_no_delivery_order(ops, contract, goods):
    with pytest.raises(ValidationFailed) as exc:
        svc.create_delivery_order(actor=ops, contract=contract, lines=[
            {"contract_line": line_of(contract, goods.saas).pk, "quantity": "1"}])

    assert exc.value.code == "service_line"
    assert "SaaS 年费" in str(exc.value.message)
    assert not DeliveryOrder.objects.exists()


@pytest.mark.parametrize(("quantity", "code"), [("0", "invalid_quantity"),
                                                ("-1", "invalid_quantity"),
                                                ("1.0001", "invalid_quantity"),
                                                ("x", "invalid_quantity")])
def test_bad_quantities_are_refused(ops, contract, goods, quantity, code):
    with pytest.raises(ValidationFailed) as exc:
        svc.create_delivery_order(actor=ops, contract=contract,
                                  lines=boxes(contract, goods, quantity))
    assert exc.value.code == code


def test_a_line_of_another_contract_is_refused(company, ops, contract, goods):
    other = signed(company, goods, company.rep_b, title="另一个合同")

    with pytest.raises(ValidationFailed) as exc:
        svc.create_delivery_order(actor=ops, contract=contract, lines=boxes(other, goods, "1"))

    assert exc.value.code == "line_not_on_contract"


def test_only_signed_contracts_take_delivery_orders(company, ops, goods):
    from weiying.pipeline.services import contracts as contract_svc

    draft = contract_svc.create_contract(
        actor=None, customer=world.make_customer("草稿客户", company.rep_a), title="草稿",
        lines=[{"product": goods.box, "quantity": "1"}])

    with pytest.raises(InvalidTransition) as exc:
        svc.create_delivery_order(actor=ops, contract=draft)

    assert exc.value.code == "contract_not_open"
    assert "is draft" in str(exc.value.message)


def test_the_owner_may_create_but_not_ship_and_others_may_not_create(company, contract, goods):
    owner = user_of(company.rep_a)
    order = svc.create_delivery_order(actor=owner, contract=contract,
                                      lines=boxes(contract, goods, "1"))
    assert order.created_by_id == company.rep_a.pk

    with pytest.raises(PermissionDenied):
        svc.ship_delivery_order(actor=owner, order=order, shipped_on=TODAY)
    for stranger in (company.rep_a2, company.rep_b):  # outside their scope: not acknowledged
        with pytest.raises(NotFound):
            svc.create_delivery_order(actor=user_of(stranger), contract=contract)
    with pytest.raises(PermissionDenied):  # the manager sees it but is neither owner nor ops
        svc.create_delivery_order(actor=user_of(company.manager_a), contract=contract)


def test_the_whole_path_emits_the_events_the_other_layers_read(ops, contract, goods):
    from weiying.catalog.models import Warehouse

    warehouse = Warehouse.objects.create(code="SH", name="上海仓")
    line = line_of(contract, goods.box)
    order = svc.create_delivery_order(actor=ops, contract=contract,
                                      lines=boxes(contract, goods, "4"),
                                      warehouse=warehouse)
    svc.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY - 3 * DAY,
                            carrier="顺丰", tracking_number="SF123")
    svc.mark_delivered(actor=ops, order=order, delivered_on=TODAY - 2 * DAY)
    svc.accept_delivery_order(actor=ops, order=order, accepted_on=TODAY - DAY, kind="receipt",
                              evidence_note="客户签收单已回传")

    lines = [{"contract_line_id": line.pk, "product_id": goods.box.pk, "quantity": "4.000"}]
    base = {"contract_id": contract.pk, "order_id": order.pk, "number": order.number,
            "warehouse_id": warehouse.pk, "lines": lines}
    events = {e.name: e.data
              for e in DomainEvent.objects.filter(name__startswith="delivery_order.")}
    assert events == {
        "delivery_order.created": {**base, "promised_on": None},
        "delivery_order.shipped": {**base, "shipped_on": (TODAY - 3 * DAY).isoformat()},
        "delivery_order.delivered": {**base, "delivered_on": (TODAY - 2 * DAY).isoformat()},
        "delivery_order.accepted": {**base, "accepted_on": (TODAY - DAY).isoformat()},
    }
    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number, order.acceptance_kind) == (
        "accepted", "顺丰", "SF123", "receipt")
    assert list(AuditLog.objects.filter(object_type="catalog.deliveryorder").order_by("pk")
                .values_list("action", flat=True)) == [
        "delivery_order.create", "delivery_order.ship", "delivery_order.deliver",
        "delivery_order.accept"]


def test_the_first_shipment_puts_the_contract_in_delivery(ops, contract, goods):
    first = svc.create_delivery_order(actor=ops, contract=contract,
                                      lines=boxes(contract, goods, "4"))
    second = svc.create_delivery_order(actor=ops, contract=contract)

    svc.ship_delivery_order(actor=ops, order=first, shipped_on=TODAY - 5 * DAY)
    contract.refresh_from_db()
    assert (contract.status, contract.delivered_on) == ("in_delivery", TODAY - 5 * DAY)
    svc.ship_delivery_order(actor=ops, order=second, shipped_on=TODAY - 4 * DAY)
    contract.refresh_from_db()
    assert contract.delivered_on == TODAY - 5 * DAY  # the first shipment's day stays
    assert DomainEvent.objects.filter(name="delivery.recorded").count() == 1


def _through(ops, order, *, shipped, delivered, accepted):
    svc.ship_delivery_order(actor=ops, order=order, shipped_on=shipped)
    svc.mark_delivered(actor=ops, order=order, delivered_on=delivered)
    return svc.accept_delivery_order(actor=ops, order=order, accepted_on=accepted,
                                     kind="inspection", evidence_note="验收报告")


def test_the_contract_is_accepted_when_every_goods_and_milestone_line_is(ops, contract, goods):
    first = svc.create_delivery_order(actor=ops, contract=contract,
                                      lines=boxes(contract, goods, "4"))
    rest = svc.create_delivery_order(actor=ops, contract=contract)
    _through(ops, rest, shipped=TODAY - 9 * DAY, delivered=TODAY - 8 * DAY,
             accepted=TODAY - 2 * DAY)
    contract.refresh_from_db()
    assert contract.accepted_on is None  # four boxes still open

    _through(ops, first, shipped=TODAY - 7 * DAY, delivered=TODAY - 6 * DAY,
             accepted=TODAY - 5 * DAY)

    contract.refresh_from_db()
    assert (contract.status, contract.accepted_on) == ("in_delivery", TODAY - 2 * DAY)
    accepted = DomainEvent.objects.get(name="delivery.accepted")
    assert accepted.data["accepted_on"] == (TODAY - 2 * DAY).isoformat()
    assert AuditLog.objects.get(action="contract.accept").actor_id is None  # the system


@pytest.mark.parametrize(("step", "kwargs", "code"), [
    ("ship", {"shipped_on": TODAY + DAY}, "date_in_future"),
    ("ship", {"shipped_on": TODAY - 40 * DAY}, "date_order"),  # before signing
    ("ship", {"shipped_on": "2026-13-01"}, "date_required"),
    ("deliver", {"delivered_on": TODAY - 6 * DAY}, "date_order"),  # before shipping
    ("accept", {"accepted_on": TODAY - 6 * DAY}, "date_order"),
    ("accept", {"accepted_on": TODAY + DAY}, "date_in_future"),
    ("accept", {"accepted_on": TODAY, "kind": "handshake"}, "invalid_kind"),
    ("accept", {"accepted_on": TODAY, "evidence_note": ""}, "evidence_required"),
    ("accept", {"accepted_on": TODAY, "evidence_url": "ftp://x"}, "invalid_url"),
])
def test_bad_dates_and_evidence_are_refused(ops, contract, goods, step, kwargs, code):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    if step != "ship":
        svc.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY - 5 * DAY)
    if step == "accept":
        svc.mark_delivered(actor=ops, order=order, delivered_on=TODAY - 4 * DAY)
        kwargs = {"kind": "receipt", "evidence_note": "签收", **kwargs}
    before = DeliveryOrder.objects.get(pk=order.pk).status
    runner = {"ship": svc.ship_delivery_order, "deliver": svc.mark_delivered,
              "accept": svc.accept_delivery_order}[step]

    with pytest.raises(ValidationFailed) as exc:
        runner(actor=ops, order=order, **kwargs)

    assert exc.value.code == code
    assert DeliveryOrder.objects.get(pk=order.pk).status == before


def test_steps_out_of_order_are_refused_with_the_next_step(ops, contract, goods):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    with pytest.raises(InvalidTransition) as exc:
        svc.mark_delivered(actor=ops, order=order, delivered_on=TODAY)
    assert str(exc.value.message) == "This delivery order is planned; ship it first."

    svc.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY - DAY)
    with pytest.raises(InvalidTransition) as exc:
        svc.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY)
    assert str(exc.value.message) == (
        f"This delivery order was already shipped on {(TODAY - DAY).isoformat()}.")
    with pytest.raises(InvalidTransition):
        svc.accept_delivery_order(actor=ops, order=order, accepted_on=TODAY, kind="receipt",
                                  evidence_note="x")


def test_an_accepted_order_cannot_be_cancelled(ops, contract, goods):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    _through(ops, order, shipped=TODAY - 3 * DAY, delivered=TODAY - 2 * DAY, accepted=TODAY)

    with pytest.raises(InvalidTransition) as exc:
        svc.cancel_delivery_order(actor=ops, order=order, reason="退货")

    assert "accepted by the customer on" in str(exc.value.message)
    assert DeliveryOrder.objects.get(pk=order.pk).status == "accepted"


def test_cancelling_needs_a_reason_and_says_what_it_was(ops, contract, goods):
    order = svc.create_delivery_order(actor=ops, contract=contract)
    svc.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY)
    with pytest.raises(ValidationFailed):
        svc.cancel_delivery_order(actor=ops, order=order, reason=" ")

    svc.cancel_delivery_order(actor=ops, order=order, reason="运输损坏")

    event = DomainEvent.objects.get(name="delivery_order.cancelled")
    assert event.data["previous_status"] == "shipped"
    assert event.data["cancelled_on"] == TODAY.isoformat()
    assert DeliveryOrder.objects.get(pk=order.pk).cancel_reason == "运输损坏"


def test_an_evidence_file_is_kept_under_the_data_dir(ops, contract, goods, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    order = svc.create_delivery_order(actor=ops, contract=contract)
    svc.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY - DAY)
    svc.mark_delivered(actor=ops, order=order, delivered_on=TODAY)
    upload = SimpleUploadedFile("签收单.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    with pytest.raises(ValidationFailed) as exc:
        svc.accept_delivery_order(actor=ops, order=order, accepted_on=TODAY, kind="receipt",
                                  evidence_file=SimpleUploadedFile("x.exe", b"MZ"))
    assert exc.value.code == "invalid_file"

    svc.accept_delivery_order(actor=ops, order=order, accepted_on=TODAY, kind="receipt",
                              evidence_file=upload)

    order.refresh_from_db()
    stored = tmp_path / "uploads" / order.evidence_file.name
    assert stored.read_bytes() == b"%PDF-1.4 test"
    assert order.evidence_file.name.startswith(f"delivery/{order.number}/")


def test_a_rejected_line_rolls_back_the_whole_order(ops, contract, goods):
    with pytest.raises(ValidationFailed):
        svc.create_delivery_order(actor=ops, contract=contract, lines=[
            {"contract_line": line_of(contract, goods.box).pk, "quantity": "2"},
            {"contract_line": line_of(contract, goods.saas).pk, "quantity": "1"}])
    assert not DeliveryOrder.objects.exists() and not DeliveryLine.objects.exists()
    assert not DomainEvent.objects.filter(name__startswith="delivery_order.").exists()
