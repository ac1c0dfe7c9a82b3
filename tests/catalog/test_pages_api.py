import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from weiying.api.tokens import issue_token
from weiying.catalog import services, stock_services
from weiying.catalog.models import PriceList, Product, StockLevel, StockMovement
from weiying.customers.models import Customer
from weiying.org.models import Role
from weiying.pipeline.services import contracts, quotes

pytestmark = pytest.mark.django_db


@pytest.fixture
def cat(company):
    ops = user_of(company.operations)
    box = services.create_product(actor=ops, code="BOX", name="智能柜", list_price="100.00",
                                  unit="台", standard_cost="40.00")
    impl = services.create_product(actor=ops, code="IMPL", name="实施服务", list_price="800.00",
                                   fulfilment="service", unit="人天", vat_rate="0.06")
    kit = services.create_product(actor=ops, code="KIT", name="套装", list_price="900.00")
    services.set_bundle_item(actor=ops, bundle=kit, component=box, quantity="2")
    services.create_sku(actor=ops, product=box, code="BOX-RED", name="红色款")
    wh = stock_services.create_warehouse(actor=ops, code="WH-1", name="上海仓")
    stock_services.receive_stock(actor=ops, warehouse=wh, product=box, quantity="3")
    today = timezone.localdate()
    stock_services.set_capacity(actor=ops, product=impl, year=today.year, month=today.month,
                                capacity="10")
    pl = services.create_price_list(actor=ops, name="大客户价", customer_level="A",
                                    valid_from=today - dt.timedelta(days=1))
    services.set_price_list_item(actor=ops, price_list=pl, product=box, price="88.00")
    return type("C", (), {"box": box, "impl": impl, "kit": kit, "wh": wh, "pl": pl})


PAGES = [
    ("catalog:product_list", None), ("catalog:product_new", None),
    ("catalog:product_detail", "box"), ("catalog:product_detail", "impl"),
    ("catalog:product_detail", "kit"), ("catalog:product_edit", "box"),
    ("catalog:pricelist_list", None), ("catalog:pricelist_new", None),
    ("catalog:pricelist_detail", "pl"), ("catalog:pricelist_edit", "pl"),
    ("catalog:stock", None),
]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize(("name", "obj"), PAGES)
def test_desk_pages_render_for_operations(company, login, cat, name, obj, language):
    client = login(company.operations, language=language)
    url = reverse(name, args=[getattr(cat, obj).pk] if obj else [])
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert ("目录" if language == "zh-hans" else "Catalogue") in body


def test_product_page_shows_skus_bundle_stock_capacity_and_prices(company, login, cat):
    client = login(company.operations, language="en")
    body = client.get(reverse("catalog:product_detail", args=[cat.box.pk])).content.decode()
    assert "BOX-RED" in body and "WH-1" in body and "大客户价" in body and "KIT" in body
    body = client.get(reverse("catalog:product_detail", args=[cat.impl.pk])).content.decode()
    assert "Capacity per month" in body
    body = client.get(reverse("catalog:product_detail", args=[cat.kit.pk])).content.decode()
    assert "BOX" in body and "Quantity per bundle" in body


def test_a_rep_reads_but_does_not_edit_the_catalogue(company, login, cat):
    client = login(company.rep_a, language="en")
    assert client.get(reverse("catalog:product_list")).status_code == 200
    body = client.get(reverse("catalog:product_detail", args=[cat.box.pk])).content.decode()
    assert "Add SKU" not in body
    assert client.get(reverse("catalog:product_new")).status_code == 403
    response = client.post(reverse("catalog:sku_add", args=[cat.box.pk]),
                           {"code": "BOX-X", "name": "x"})
    assert response.status_code == 403
    assert not cat.box.skus.filter(code="BOX-X").exists()
    nav = client.get(reverse("web:home")).content.decode()
    assert f'href="{reverse("catalog:product_list")}"' not in nav
    ops_nav = login(company.operations).get(reverse("web:home")).content.decode()
    assert f'href="{reverse("catalog:product_list")}"' in ops_nav


def test_operations_edits_through_the_pages(company, login, cat):
    client = login(company.operations, language="en")
    response = client.post(reverse("catalog:product_new"), {
        "code": "NEW-1", "name": "新品", "unit": "件", "list_price": "10.00",
        "vat_rate": "0.13", "standard_cost": "4.00", "fulfilment": "goods"})
    new = Product.objects.get(code="NEW-1")
    assert response.status_code == 302 and new.standard_cost == Decimal("4.00")
    bad = client.post(reverse("catalog:product_new"), {
        "code": "NEW-2", "name": "坏", "list_price": "-1", "vat_rate": "0.13",
        "fulfilment": "goods"})
    assert bad.status_code == 200 and "The list price must be an amount" in bad.content.decode()
    client.post(reverse("catalog:stock_adjust"), {"warehouse": cat.wh.pk, "product": new.pk,
                                                  "kind": "receive", "quantity": "5"})
    client.post(reverse("catalog:stock_adjust"), {"warehouse": cat.wh.pk, "product": new.pk,
                                                  "kind": "count", "quantity": "-1"})
    assert StockLevel.objects.get(product=new).on_hand == Decimal("5")
    client.post(reverse("catalog:bundle_item_set", args=[cat.kit.pk]),
                {"component": cat.kit.pk, "quantity": "1"})
    assert cat.kit.bundle_items.count() == 1
    client.post(reverse("catalog:pricelist_item_set", args=[cat.pl.pk]),
                {"product": new.pk, "price": "9.00"})
    assert cat.pl.items.filter(product=new).exists()
    client.post(reverse("catalog:capacity_set", args=[cat.impl.pk]),
                {"year": "2027", "month": "2", "capacity": "12"})
    assert cat.impl.capacity_periods.filter(year=2027, month=2).exists()
    response = client.post(reverse("catalog:pricelist_new"), {
        "name": "A 级二", "customer_level": "A", "valid_from": "2026-01-01", "priority": "0",
        "is_active": "on"})
    assert response.status_code == 302
    assert PriceList.objects.filter(name="A 级二").exists()


def _customer(company, level="A"):
    return Customer.objects.create(name="甲公司", name_key="甲公司", level=level,
                                   owner=company.rep_a, department=company.team_a,
                                   last_activity_at=timezone.now())


def test_contract_and_quote_pages_warn_before_a_rep_promises_too_much(company, login, cat):
    rep = user_of(company.rep_a)
    customer = _customer(company)
    contract = contracts.create_contract(actor=rep, customer=customer, title="大单",
                                         lines=[{"product": cat.box, "quantity": "5"}])
    quote = quotes.create_quote(actor=rep, customer=customer,
                                lines=[{"product": cat.kit, "quantity": "2"}])
    client = login(company.rep_a, language="en")
    body = client.get(reverse("pipeline:contract_detail", args=[contract.pk])).content.decode()
    assert "Only 3 台 of 智能柜 are free in stock and 5 are asked" in body
    body = client.get(reverse("pipeline:quote_detail", args=[quote.pk])).content.decode()
    assert "In bundle 套装: Only 3 台 of 智能柜 are free in stock and 4 are asked" in body
    data = client.get(f"/api/contracts/{contract.pk}").json()
    assert data["availability"] == [
        "Only 3 台 of 智能柜 are free in stock and 5 are asked: the rest cannot be delivered now."]
    assert data["lines"][0]["unit_price"] == "88.00"
    zh = login(company.rep_a).get(reverse("pipeline:contract_detail", args=[contract.pk]))
    assert "智能柜" in zh.content.decode() and "Only 3" not in zh.content.decode()


def test_the_api_lists_products_price_lists_stock_and_prices(company, login, cat):
    client = login(company.rep_a, language="en")
    products = client.get("/api/catalog/products").json()["items"]
    assert [p["code"] for p in products] == ["BOX", "IMPL", "KIT"]
    assert products[0]["standard_cost"] == "40.00"
    box = client.get(f"/api/catalog/products/{cat.box.pk}").json()
    assert box["skus"][0]["code"] == "BOX-RED" and box["skus"][0]["list_price"] == "100.00"
    assert box["stock"][0]["on_hand"] == "3.000"
    kit = client.get(f"/api/catalog/products/{cat.kit.pk}").json()
    assert kit["components"] == [{"product_id": cat.box.pk, "code": "BOX", "quantity": "2.000",
                                  "standalone_price": "100.00"}]
    lists = client.get("/api/catalog/price-lists").json()["items"]
    assert [pl["name"] for pl in lists] == ["大客户价"]
    detail = client.get(f"/api/catalog/price-lists/{cat.pl.pk}").json()
    assert detail["items"] == [{"product_id": cat.box.pk, "product_code": "BOX",
                                "price": "88.00"}]
    customer = _customer(company)
    prices = client.get(f"/api/catalog/customers/{customer.pk}/prices").json()["items"]
    assert [(p["product_code"], p["price"], p["price_list_name"]) for p in prices] == [
        ("BOX", "88.00", "大客户价"), ("IMPL", "800.00", None), ("KIT", "900.00", None)]
    one = client.get(f"/api/catalog/customers/{customer.pk}/prices",
                     {"product_id": cat.impl.pk}).json()["items"]
    assert [p["product_code"] for p in one] == ["IMPL"]
    outsider = Customer.objects.create(name="丙", name_key="丙", owner=company.rep_b,
                                       department=company.team_b,
                                       last_activity_at=timezone.now())
    assert client.get(f"/api/catalog/customers/{outsider.pk}/prices").status_code == 404
    found = client.get("/api/catalog/availability", {"product_id": cat.box.pk,
                                                     "quantity": "4"}).json()
    assert (Decimal(found["available"]), found["tracked"]) == (Decimal(3), True)
    assert found["warning"].startswith("Only 3")
    assert client.get("/api/catalog/stock").json()["items"][0]["product_code"] == "BOX"


def _erp(company):
    _token, raw = issue_token(actor=user_of(company.admin), name="WMS",
                              user=user_of(company.operations),
                              role=Role.objects.get(code="operations"))
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_an_erp_updates_stock_once_per_sender_id(company, cat):
    erp = _erp(company)
    body = {"id": "wms-42", "warehouse": "WH-1", "product": "BOX", "received": "7"}
    first = erp.post("/api/catalog/stock", body, content_type="application/json")
    assert first.status_code == 201
    assert first.json()["stock"]["on_hand"] == "10.000"
    again = erp.post("/api/catalog/stock", body, content_type="application/json")
    assert again.status_code == 200
    assert again.json()["movement_id"] == first.json()["movement_id"]
    count = erp.post("/api/catalog/stock", {"id": "wms-43", "warehouse": "WH-1",
                                            "product": "BOX", "on_hand": "6"},
                     content_type="application/json")
    assert count.status_code == 201 and count.json()["change"] == "-4.000"
    assert StockLevel.objects.get(product=cat.box).on_hand == Decimal("6")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"id": "x1", "warehouse": "WH-1", "product": "BOX", "on_hand": "-1"}, 400,
     "negative_stock"),
    ({"id": "x2", "warehouse": "WH-9", "product": "BOX", "on_hand": "1"}, 400,
     "unknown_warehouse"),
    ({"id": "x3", "warehouse": "WH-1", "product": "NOPE", "on_hand": "1"}, 400,
     "unknown_product"),
    ({"id": "x4", "warehouse": "WH-1", "product": "BOX", "on_hand": "1", "received": "1"},
     400, "invalid"),
    ({"id": "x5", "warehouse": "WH-1", "product": "IMPL", "received": "1"}, 400, "invalid"),
    ({"warehouse": "WH-1", "product": "BOX", "on_hand": "1"}, 422, "invalid"),
])
def test_bad_stock_updates_are_refused_and_write_nothing(company, cat, body, status, code):
    before = StockMovement.objects.count()
    response = _erp(company).post("/api/catalog/stock", body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert StockMovement.objects.count() == before


def test_a_rep_token_cannot_update_stock(company, cat):
    _token, raw = issue_token(actor=user_of(company.admin), name="rep",
                              user=user_of(company.rep_a), role=Role.objects.get(code="rep"))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post("/api/catalog/stock", {"id": "r1", "warehouse": "WH-1",
                                                  "product": "BOX", "received": "1"},
                           content_type="application/json")
    assert response.status_code == 403
    assert StockLevel.objects.get(product=cat.box).on_hand == Decimal("3")


def _more(company, n, start):
    ops = user_of(company.operations)
    wh = stock_services.create_warehouse(actor=ops, code=f"WH-{start}", name=f"仓{start}")
    for i in range(start, start + n):
        p = services.create_product(actor=ops, code=f"Q-{i:03d}", name=f"品{i}",
                                    list_price="1.00")
        stock_services.receive_stock(actor=ops, warehouse=wh, product=p, quantity="1")
        pl = services.create_price_list(actor=ops, name=f"价{i}", channel=f"ch{i}",
                                        valid_from=dt.date(2026, 1, 1))
        services.set_price_list_item(actor=ops, price_list=pl, product=p, price="0.90")


@pytest.mark.parametrize("name", ["catalog:product_list", "catalog:pricelist_list",
                                  "catalog:stock"])
def test_catalogue_lists_cost_the_same_for_more_rows(company, login, name):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(company.operations)
    _more(company, 2, 100)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse(name)).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    _more(company, 5, 200)
    assert count() == few


def test_the_draft_edit_form_warns_too(company, login, cat):
    rep = user_of(company.rep_a)
    contract = contracts.create_contract(actor=rep, customer=_customer(company, "B"),
                                         title="草稿", lines=[{"product": cat.box, "quantity": "9"}])
    body = login(company.rep_a, language="en").get(
        reverse("pipeline:contract_edit", args=[contract.pk])).content.decode()
    assert "Only 3 台 of 智能柜 are free in stock and 9 are asked" in body
