import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from tests.conftest import user_of
from weiying.catalog import services
from weiying.catalog.bundles import components
from weiying.catalog.models import BundleItem, PriceList, Product, Sku
from weiying.catalog.selectors import price_for
from weiying.core.errors import Conflict, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog
from weiying.customers.models import Customer

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 6, 15)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def ops(company):
    return user_of(company.operations)


def product(ops, code="P-1", price="100.00", **kw):
    return services.create_product(actor=ops, code=code, name=f"品{code}", list_price=price,
                                   **kw)


def test_operations_creates_a_product_with_cost_ssp_and_fulfilment(ops):
    p = product(ops, standard_cost="40.00", standalone_price="120.00", fulfilment="service",
                service_months=12)
    p.refresh_from_db()
    assert (p.standard_cost, p.standalone_price, p.fulfilment, p.service_months) == (
        Decimal("40.00"), Decimal("120.00"), "service", 12)
    assert p.ssp == Decimal("120.00")
    services.update_product(actor=ops, product=p, standalone_price="", fulfilment="milestone")
    p.refresh_from_db()
    assert p.standalone_price is None and p.ssp == Decimal("100.00")
    assert p.fulfilment == "milestone"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"standard_cost": "-1"}, "standard_cost"),
    ({"standalone_price": "-0.01"}, "standalone_price"),
    ({"standalone_price": "1.001"}, "standalone_price"),
    ({"fulfilment": "teleport"}, "fulfilment"),
    ({"service_months": 0}, "service_months"),
    ({"price": "-5"}, "list_price"),
])
def test_bad_new_product_fields_are_refused(ops, kwargs, field):
    with pytest.raises(ValidationFailed) as exc:
        product(ops, **kwargs)
    assert exc.value.field == field
    assert not Product.objects.exists()


def test_a_rep_cannot_edit_the_catalogue(company):
    with pytest.raises(PermissionDenied):
        services.create_product(actor=user_of(company.rep_a), code="X", name="x",
                                list_price="1.00")


# --- SKUs ---
def test_skus_override_price_and_cost_or_fall_back_to_the_product(ops):
    p = product(ops, standard_cost="30.00")
    red = services.create_sku(actor=ops, product=p, code="P-1-RED", name="红色",
                              list_price="110.00")
    blue = services.create_sku(actor=ops, product=p, code="P-1-BLU", name="蓝色")
    assert (red.price, red.cost) == (Decimal("110.00"), Decimal("30.00"))
    assert blue.price == Decimal("100.00")
    services.update_sku(actor=ops, sku=blue, standard_cost="25.00")
    blue.refresh_from_db()
    assert blue.cost == Decimal("25.00")
    services.retire_sku(actor=ops, sku=red)
    assert list(Sku.objects.filter(is_active=True).values_list("code", flat=True)) == ["P-1-BLU"]
    assert AuditLog.objects.filter(action__startswith="sku.").count() == 4


def test_bad_skus_are_refused(ops):
    p = product(ops)
    services.create_sku(actor=ops, product=p, code="S-1", name="x")
    with pytest.raises(Conflict) as exc:
        services.create_sku(actor=ops, product=p, code="S-1", name="y")
    assert exc.value.code == "duplicate_sku_code"
    with pytest.raises(ValidationFailed) as exc:
        services.create_sku(actor=ops, product=p, code="S-2", name="y", list_price="-1")
    assert exc.value.field == "list_price"
    with pytest.raises(ValidationFailed):
        services.create_sku(actor=ops, product=p, code="S-3", name=" ")
    assert Sku.objects.count() == 1


# --- Bundles ---
def test_a_bundle_lists_its_components(ops):
    box, saas, kit = product(ops, "BOX"), product(ops, "SAAS"), product(ops, "KIT")
    services.set_bundle_item(actor=ops, bundle=kit, component=box, quantity="2")
    services.set_bundle_item(actor=ops, bundle=kit, component=saas, quantity="1")
    services.set_bundle_item(actor=ops, bundle=kit, component=box, quantity="3")
    assert [(c.code, q) for c, q in components(kit)] == [("BOX", Decimal("3")),
                                                          ("SAAS", Decimal("1"))]
    assert components(box) == []
    services.remove_bundle_item(actor=ops, bundle=kit, component=saas)
    assert [c.code for c, _q in components(kit)] == ["BOX"]


def test_bundles_do_not_nest_or_contain_themselves(ops):
    box, kit, big = product(ops, "BOX"), product(ops, "KIT"), product(ops, "BIG")
    services.set_bundle_item(actor=ops, bundle=kit, component=box, quantity="1")
    with pytest.raises(ValidationFailed) as exc:
        services.set_bundle_item(actor=ops, bundle=big, component=kit, quantity="1")
    assert exc.value.code == "bundle_of_bundle"
    assert str(exc.value.message) == (
        "KIT is a bundle itself; bundles do not nest. Add its components instead.")
    with pytest.raises(ValidationFailed) as exc:
        services.set_bundle_item(actor=ops, bundle=box, component=big, quantity="1")
    assert exc.value.code == "bundle_of_bundle"
    with pytest.raises(ValidationFailed) as exc:
        services.set_bundle_item(actor=ops, bundle=big, component=big, quantity="1")
    assert exc.value.code == "bundle_of_itself"
    with pytest.raises(ValidationFailed):
        services.set_bundle_item(actor=ops, bundle=big, component=box, quantity="0")
    assert BundleItem.objects.count() == 1


# --- Price lists ---
def customer(channel="", source="other", level="B"):
    return Customer.objects.create(name="客户", name_key="客户", channel=channel, source=source,
                                   level=level, last_activity_at=timezone.now())


def plist(ops, name, items, **kw):
    kw.setdefault("valid_from", dt.date(2026, 1, 1))
    pl = services.create_price_list(actor=ops, name=name, **kw)
    for p, price in items:
        services.set_price_list_item(actor=ops, price_list=pl, product=p, price=price)
    return pl


def test_the_most_specific_valid_list_wins_then_priority(ops):
    p = product(ops)
    general = plist(ops, "全员", [(p, "95.00")])
    level_a = plist(ops, "A 级", [(p, "90.00")], customer_level="A")
    wecom_a = plist(ops, "企微 A 级", [(p, "85.00")], customer_level="A", channel="wecom")
    promo = plist(ops, "A 级促销", [(p, "80.00")], customer_level="A", priority=5,
                  valid_from=dt.date(2026, 6, 1), valid_until=dt.date(2026, 6, 30))
    a_wecom, a_other, b = customer("", "wecom", "A"), customer(level="A"), customer()
    assert price_for(p, a_wecom, on=DAY) == (Decimal("85.00"), wecom_a)
    assert price_for(p, a_other, on=DAY) == (Decimal("80.00"), promo)
    assert price_for(p, a_other, on=dt.date(2026, 7, 1)) == (Decimal("90.00"), level_a)
    assert price_for(p, b, on=DAY) == (Decimal("95.00"), general)
    assert price_for(p, b, on=dt.date(2025, 12, 31)) == (Decimal("100.00"), None)
    assert price_for(p, None, on=DAY) == (Decimal("100.00"), None)


def test_a_channel_matches_the_customer_channel_or_source(ops):
    p = product(ops)
    fair = plist(ops, "展会", [(p, "88.00")], channel="2026 春季展")
    assert price_for(p, customer(channel="2026 春季展"), on=DAY) == (Decimal("88.00"), fair)
    assert price_for(p, customer(source="exhibition"), on=DAY)[1] is None


def test_inactive_or_expired_lists_are_ignored(ops):
    p = product(ops)
    old = plist(ops, "旧", [(p, "70.00")], valid_until=dt.date(2026, 3, 31))
    off = plist(ops, "停用", [(p, "60.00")], priority=3)
    services.update_price_list(actor=ops, price_list=off, is_active=False)
    assert old.valid_until and price_for(p, customer(), on=DAY) == (Decimal("100.00"), None)


def test_overlapping_lists_of_the_same_rank_are_refused(ops):
    p, q = product(ops), product(ops, "P-2")
    plist(ops, "A 级", [(p, "90.00")], customer_level="A", valid_until=dt.date(2026, 12, 31))
    other = plist(ops, "企微", [(q, "90.00")], channel="wecom")
    with pytest.raises(Conflict) as exc:
        services.set_price_list_item(actor=ops, price_list=other, product=p, price="91.00")
    assert exc.value.code == "price_list_overlap"
    assert str(exc.value.message).startswith("Price list “A 级” already prices P-1")
    assert not other.items.filter(product=p).exists()
    # another priority, or dates that do not meet, or a different level: allowed
    later = plist(ops, "A 级下半年", [], customer_level="A", valid_from=dt.date(2027, 1, 1))
    services.set_price_list_item(actor=ops, price_list=later, product=p, price="89.00")
    b_list = plist(ops, "B 级", [(p, "99.00")], customer_level="B")
    assert b_list.items.count() == 1
    with pytest.raises(Conflict):
        services.update_price_list(actor=ops, price_list=later, valid_from=dt.date(2026, 5, 1))
    later.refresh_from_db()
    assert later.valid_from == dt.date(2027, 1, 1)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": ""}, "name"),
    ({"customer_level": "Z"}, "customer_level"),
    ({"valid_from": ""}, "valid_from"),
    ({"valid_until": dt.date(2025, 1, 1)}, "valid_until"),
    ({"priority": "high"}, "priority"),
])
def test_bad_price_lists_are_refused(ops, kwargs, field):
    args = {"name": "x", "valid_from": dt.date(2026, 1, 1), **kwargs}
    with pytest.raises(ValidationFailed) as exc:
        services.create_price_list(actor=ops, **args)
    assert exc.value.field == field
    assert not PriceList.objects.exists()


def test_a_negative_list_price_is_refused(ops):
    p = product(ops)
    pl = plist(ops, "x", [])
    with pytest.raises(ValidationFailed) as exc:
        services.set_price_list_item(actor=ops, price_list=pl, product=p, price="-1.00")
    assert exc.value.field == "price"
    assert not pl.items.exists()
