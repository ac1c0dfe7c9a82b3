import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from tests.conftest import user_of
from weiying.catalog import services, stock_services
from weiying.catalog.models import (
    CapacityPeriod,
    Reservation,
    StockLevel,
    StockMovement,
)
from weiying.catalog.selectors import availability, line_warnings
from weiying.core import events
from weiying.core.errors import ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers.models import Customer
from weiying.pipeline.services import contracts as contract_services

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def ops(company):
    return user_of(company.operations)


@pytest.fixture
def world(company, ops):
    box = services.create_product(actor=ops, code="BOX", name="智能柜", list_price="100.00",
                                  unit="台")
    days = services.create_product(actor=ops, code="IMPL", name="实施服务", list_price="800.00",
                                   fulfilment="service", unit="人天", vat_rate="0.06")
    north = stock_services.create_warehouse(actor=ops, code="WH-N", name="北京仓")
    south = stock_services.create_warehouse(actor=ops, code="WH-S", name="上海仓")
    stock_services.receive_stock(actor=ops, warehouse=north, product=box, quantity="5")
    stock_services.receive_stock(actor=ops, warehouse=south, product=box, quantity="8")
    stock_services.set_capacity(actor=ops, product=days, year=TODAY.year, month=TODAY.month,
                                capacity="20")
    customer = Customer.objects.create(name="甲公司", name_key="甲公司", owner=company.rep_a,
                                       department=company.team_a,
                                       last_activity_at=timezone.now())
    return type("W", (), {"box": box, "days": days, "north": north, "south": south,
                          "customer": customer, "company": company})


def signed(world, lines, capture, start_on=None):
    rep = user_of(world.company.rep_a)
    with capture(execute=True):
        contract = contract_services.create_contract(
            actor=rep, customer=world.customer, title="合同", lines=lines, start_on=start_on)
        contract_services.submit_contract(actor=rep, contract=contract)
        contract_services.sign_contract(actor=user_of(world.company.finance), contract=contract,
                                        signed_on=TODAY)
    contract.refresh_from_db()
    return contract


def level(warehouse, product):
    s = StockLevel.objects.get(warehouse=warehouse, product=product)
    return (s.on_hand, s.reserved)


def test_receiving_and_counting_write_the_ledger_and_the_audit(world, ops):
    assert level(world.north, world.box) == (Decimal("5"), Decimal("0"))
    stock_services.count_stock(actor=ops, warehouse=world.north, product=world.box,
                               on_hand="3", note="盘点")
    assert level(world.north, world.box)[0] == Decimal("3")
    moves = list(StockMovement.objects.filter(stock__warehouse=world.north).order_by("pk")
                 .values_list("kind", "quantity", "on_hand_after"))
    assert moves == [("receive", Decimal("5"), Decimal("5")),
                     ("count", Decimal("-2"), Decimal("3"))]
    assert AuditLog.objects.filter(action="stock.count").count() == 1
    assert DomainEvent.objects.filter(name="stock.adjusted").count() == 3


@pytest.mark.parametrize(("call", "field"), [
    ("count", "on_hand"), ("receive", "quantity"), ("receive_zero", "quantity")])
def test_negative_stock_is_refused(world, ops, call, field):
    before = StockMovement.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        if call == "count":
            stock_services.count_stock(actor=ops, warehouse=world.north, product=world.box,
                                       on_hand="-1")
        else:
            stock_services.receive_stock(actor=ops, warehouse=world.north, product=world.box,
                                         quantity="-2" if call == "receive" else "0")
    assert exc.value.field == field
    if call == "count":
        assert exc.value.code == "negative_stock"
        assert str(exc.value.message) == (
            "Stock on hand cannot be negative: count what is there (zero or more).")
    assert StockMovement.objects.count() == before
    assert level(world.north, world.box)[0] == Decimal("5")


def test_a_repeated_sender_id_changes_nothing(world, ops):
    first = stock_services.receive_stock(actor=ops, warehouse=world.north, product=world.box,
                                         quantity="2", key="wms-1")
    again = stock_services.receive_stock(actor=ops, warehouse=world.north, product=world.box,
                                         quantity="2", key="wms-1")
    assert first.pk == again.pk
    assert level(world.north, world.box)[0] == Decimal("7")


def test_services_have_capacity_goods_have_stock(world, ops):
    with pytest.raises(ValidationFailed):
        stock_services.set_capacity(actor=ops, product=world.box, year=2026, month=1,
                                    capacity="1")
    with pytest.raises(ValidationFailed):
        stock_services.receive_stock(actor=ops, warehouse=world.north, product=world.days,
                                     quantity="1")
    with pytest.raises(ValidationFailed):
        stock_services.set_capacity(actor=ops, product=world.days, year=2026, month=13,
                                    capacity="1")


def test_signing_reserves_goods_in_the_fullest_warehouse_and_services_in_the_month(
        world, django_capture_on_commit_callbacks):
    contract = signed(world, [{"product": world.box, "quantity": "6"},
                              {"product": world.days, "quantity": "5"}],
                      django_capture_on_commit_callbacks)
    assert level(world.south, world.box) == (Decimal("8"), Decimal("6"))
    assert level(world.north, world.box) == (Decimal("5"), Decimal("0"))
    period = CapacityPeriod.objects.get(product=world.days, year=TODAY.year, month=TODAY.month)
    assert (period.capacity, period.reserved) == (Decimal("20"), Decimal("5"))
    assert Reservation.objects.filter(contract_line__contract=contract,
                                      status="reserved").count() == 2
    assert DomainEvent.objects.filter(name="stock.reserved").count() == 1


def test_a_service_is_reserved_in_the_contract_start_month(world, ops,
                                                          django_capture_on_commit_callbacks):
    start = (TODAY.replace(day=1) + dt.timedelta(days=40)).replace(day=3)
    signed(world, [{"product": world.days, "quantity": "4"}],
           django_capture_on_commit_callbacks, start_on=start)
    period = CapacityPeriod.objects.get(product=world.days, year=start.year, month=start.month)
    assert (period.capacity, period.reserved) == (Decimal("0"), Decimal("4"))
    # the month is overbooked: quoting more shows it
    assert availability(world.days, "1", on=start).warning == (
        f"Only 0 人天 of 实施服务 are free in {start:%Y-%m} and 1 are asked: the rest cannot be "
        "delivered that month.")


def test_signing_is_never_blocked_by_missing_stock(world, django_capture_on_commit_callbacks):
    contract = signed(world, [{"product": world.box, "quantity": "30"}],
                      django_capture_on_commit_callbacks)
    assert contract.status == "signed"
    assert level(world.south, world.box) == (Decimal("8"), Decimal("30"))


def test_a_replayed_signing_reserves_nothing_twice(world, django_capture_on_commit_callbacks):
    signed(world, [{"product": world.box, "quantity": "2"}], django_capture_on_commit_callbacks)
    event = DomainEvent.objects.get(name="contract.signed")
    from weiying.catalog.subscribers import reserve_on_signing

    reserve_on_signing(event)  # a replay past the outbox's record of the first run
    events.replay(DomainEvent.objects.filter(pk=event.pk))
    assert level(world.south, world.box)[1] == Decimal("2")
    assert Reservation.objects.count() == 1


def test_cancelling_releases_exactly_what_the_contract_held(
        world, django_capture_on_commit_callbacks):
    keep = signed(world, [{"product": world.box, "quantity": "1"}],
                  django_capture_on_commit_callbacks)
    gone = signed(world, [{"product": world.box, "quantity": "3"},
                          {"product": world.days, "quantity": "2"}],
                  django_capture_on_commit_callbacks)
    assert level(world.south, world.box)[1] == Decimal("4")
    with django_capture_on_commit_callbacks(execute=True):
        contract_services.cancel_contract(actor=user_of(world.company.finance), contract=gone,
                                          reason="客户取消")
    assert level(world.south, world.box)[1] == Decimal("1")
    assert CapacityPeriod.objects.get(product=world.days).reserved == Decimal("0")
    assert set(Reservation.objects.filter(contract_line__contract=gone)
               .values_list("status", flat=True)) == {"released"}
    # replay: nothing moves again
    from weiying.catalog.subscribers import release_on_cancellation

    release_on_cancellation(DomainEvent.objects.get(name="contract.cancelled"))
    assert level(world.south, world.box)[1] == Decimal("1")
    assert Reservation.objects.get(contract_line__contract=keep).status == "reserved"


def shipped_event(contract, quantity, order_id=7, warehouse_id=None):
    line = contract.lines.get(product__code="BOX")
    return DomainEvent.objects.create(
        name="delivery_order.shipped", subject_type="catalog.deliveryorder",
        subject_id=str(order_id),
        data={"contract_id": contract.pk, "order_id": order_id, "warehouse_id": warehouse_id,
              "lines": [{"contract_line_id": str(line.pk), "product_id": str(line.product_id),
                         "quantity": str(quantity)}]})


def test_a_shipment_issues_the_reservation_once(world, django_capture_on_commit_callbacks):
    contract = signed(world, [{"product": world.box, "quantity": "5"}],
                      django_capture_on_commit_callbacks)
    assert level(world.south, world.box) == (Decimal("8"), Decimal("5"))
    first = shipped_event(contract, "2", order_id=1)
    events.dispatch(first)
    assert level(world.south, world.box) == (Decimal("6"), Decimal("3"))
    from weiying.catalog.subscribers import issue_on_shipment

    issue_on_shipment(first)  # a replay, even past the outbox's record
    assert level(world.south, world.box) == (Decimal("6"), Decimal("3"))
    events.dispatch(shipped_event(contract, "3", order_id=2))
    assert level(world.south, world.box) == (Decimal("3"), Decimal("0"))
    reservation = Reservation.objects.get()
    assert (reservation.issued, reservation.status) == (Decimal("5"), "issued")
    # cancelling after the goods left releases nothing
    with django_capture_on_commit_callbacks(execute=True):
        contract_services.cancel_contract(actor=user_of(world.company.finance),
                                          contract=contract, reason="退货另议")
    assert level(world.south, world.box) == (Decimal("3"), Decimal("0"))


def test_a_shipment_from_another_warehouse_moves_its_stock(
        world, django_capture_on_commit_callbacks):
    contract = signed(world, [{"product": world.box, "quantity": "2"}],
                      django_capture_on_commit_callbacks)
    events.dispatch(shipped_event(contract, "2", warehouse_id=world.north.pk))
    assert level(world.north, world.box) == (Decimal("3"), Decimal("0"))
    assert level(world.south, world.box) == (Decimal("8"), Decimal("0"))


def test_bundles_reserve_and_show_their_components(world, ops,
                                                   django_capture_on_commit_callbacks):
    kit = services.create_product(actor=ops, code="KIT", name="套装", list_price="2000.00")
    services.set_bundle_item(actor=ops, bundle=kit, component=world.box, quantity="2")
    services.set_bundle_item(actor=ops, bundle=kit, component=world.days, quantity="3")
    assert availability(kit, "6").available == Decimal("6")  # box 13 // 2, days 20 // 3
    short = availability(kit, "7")
    assert short.warning.startswith("In bundle 套装: Only 13 台 of 智能柜 are free in stock and "
                                    "14 are asked")
    assert "In bundle 套装: Only 20 人天 of 实施服务" in short.warning
    signed(world, [{"product": kit, "quantity": "2"}], django_capture_on_commit_callbacks)
    assert level(world.south, world.box)[1] == Decimal("4")
    assert CapacityPeriod.objects.get(product=world.days).reserved == Decimal("6")


def test_availability_warns_before_a_rep_promises_too_much(world):
    assert availability(world.box, "13").warning == ""
    short = availability(world.box, "14")
    assert (short.available, short.short) == (Decimal("13"), True)
    assert short.warning == ("Only 13 台 of 智能柜 are free in stock and 14 are asked: the rest "
                             "cannot be delivered now.")
    lines = [type("L", (), {"product": world.box, "quantity": Decimal("7")})(),
             type("L", (), {"product": world.box, "quantity": Decimal("7")})()]
    assert len(line_warnings(lines)) == 1


def test_an_untracked_product_is_never_short(world, ops, django_capture_on_commit_callbacks):
    saas = services.create_product(actor=ops, code="SAAS", name="SaaS 年费",
                                   list_price="1000.00", fulfilment="service")
    assert availability(saas, "1000").available is None
    assert availability(saas, "1000").warning == ""
    signed(world, [{"product": saas, "quantity": "3"}], django_capture_on_commit_callbacks)
    assert not Reservation.objects.exists()


def test_a_delivery_order_shipped_through_operations_issues_the_goods(
        world, ops, django_capture_on_commit_callbacks):
    from weiying.catalog import delivery_services

    contract = signed(world, [{"product": world.box, "quantity": "4"}],
                      django_capture_on_commit_callbacks)
    line = contract.lines.get()
    with django_capture_on_commit_callbacks(execute=True):
        order = delivery_services.create_delivery_order(
            actor=ops, contract=contract, lines=[{"contract_line": line.pk, "quantity": "3"}],
            warehouse=world.north)
        delivery_services.ship_delivery_order(actor=ops, order=order, shipped_on=TODAY)
    # reserved in the south (most free), shipped from the north as the order says
    assert level(world.south, world.box) == (Decimal("8"), Decimal("1"))
    assert level(world.north, world.box) == (Decimal("2"), Decimal("0"))
    events.replay(DomainEvent.objects.filter(name="delivery_order.shipped"))
    assert level(world.north, world.box) == (Decimal("2"), Decimal("0"))


def test_the_product_page_lists_what_visible_contracts_hold(world, login,
                                                            django_capture_on_commit_callbacks):
    contract = signed(world, [{"product": world.box, "quantity": "2"}],
                      django_capture_on_commit_callbacks)
    url = f"/catalog/products/{world.box.pk}/"
    assert contract.number in login(world.company.operations).get(url).content.decode()
    assert contract.number in login(world.company.rep_a).get(url).content.decode()
    assert contract.number not in login(world.company.rep_b).get(url).content.decode()


def test_a_long_sender_id_is_refused_plainly(world, ops):
    with pytest.raises(ValidationFailed) as exc:
        stock_services.apply_stock_update(actor=ops, key="x" * 121, warehouse_code="WH-N",
                                          product_code="BOX", received="1")
    assert str(exc.value.message) == "The sender's id is at most 120 characters."
    movement, created = stock_services.apply_stock_update(
        actor=ops, key="y" * 120, warehouse_code="WH-N", product_code="BOX", received="1")
    assert created and movement.key == "api:" + "y" * 120
