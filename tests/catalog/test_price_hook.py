import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from weiying.catalog import services
from weiying.core.errors import ValidationFailed
from weiying.customers.models import Customer
from weiying.pipeline.services import contracts, quotes

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(company):
    ops = user_of(company.operations)
    box = services.create_product(actor=ops, code="BOX", name="智能柜", list_price="100.00")
    key = services.create_price_list(actor=ops, name="大客户价", customer_level="A",
                                     valid_from=timezone.localdate() - dt.timedelta(days=1))
    services.set_price_list_item(actor=ops, price_list=key, product=box, price="88.00")

    def customer(level):
        return Customer.objects.create(name=f"客户{level}", name_key=f"客户{level}", level=level,
                                       owner=company.rep_a, department=company.team_a,
                                       last_activity_at=timezone.now())

    return box, customer("A"), customer("B"), user_of(company.rep_a)


def test_a_line_without_a_price_takes_the_customers_price_list(setup):
    box, key_account, regular, rep = setup
    contract = contracts.create_contract(actor=rep, customer=key_account, title="大单",
                                         lines=[{"product": box, "quantity": "2"}])
    line = contract.lines.get()
    assert (line.unit_price, line.amount, contract.total) == (
        Decimal("88.00"), Decimal("176.00"), Decimal("176.00"))
    other = contracts.create_contract(actor=rep, customer=regular, title="小单",
                                      lines=[{"product": box, "quantity": "1"}])
    assert other.lines.get().unit_price == Decimal("100.00")


def test_a_price_the_rep_gives_is_kept(setup):
    box, key_account, _regular, rep = setup
    contract = contracts.create_contract(
        actor=rep, customer=key_account, title="议价",
        lines=[{"product": box, "quantity": "1", "unit_price": "95.00"}])
    assert contract.lines.get().unit_price == Decimal("95.00")
    contracts.update_contract(actor=rep, contract=contract,
                              lines=[{"product": box, "quantity": "3"}])
    assert contract.lines.get().unit_price == Decimal("88.00")


def test_quotes_take_the_price_list_too(setup):
    box, key_account, _regular, rep = setup
    quote = quotes.create_quote(actor=rep, customer=key_account,
                                lines=[{"product": box, "quantity": "1"}])
    assert quote.lines.get().unit_price == Decimal("88.00")
    quote = quotes.update_quote(actor=rep, quote=quote,
                                lines=[{"product": box, "quantity": "2"}])
    assert quote.total == Decimal("176.00")


def test_a_line_may_name_a_sku_and_takes_its_price(setup, company):
    box, key_account, regular, rep = setup
    ops = user_of(company.operations)
    red = services.create_sku(actor=ops, product=box, code="BOX-RED", name="红色",
                              list_price="120.00")
    contract = contracts.create_contract(actor=rep, customer=regular, title="红色款",
                                         lines=[{"product": box, "sku": red.pk, "quantity": "1"}])
    line = contract.lines.get()
    assert (line.sku_id, line.unit_price) == (red.pk, Decimal("120.00"))
    # the customer's price list still wins over the SKU's list price
    other = contracts.create_contract(actor=rep, customer=key_account, title="大客户红色",
                                      lines=[{"product": box, "sku": red, "quantity": "1"}])
    assert other.lines.get().unit_price == Decimal("88.00")
    # a quote converted to a contract keeps the SKU
    quote = quotes.create_quote(actor=rep, customer=regular,
                                lines=[{"product": box, "sku": red, "quantity": "2"}])
    assert quote.lines.get().sku_id == red.pk


def test_a_sku_of_another_product_or_a_retired_one_is_refused(setup, company):
    box, _key_account, regular, rep = setup
    ops = user_of(company.operations)
    other = services.create_product(actor=ops, code="CAB", name="机柜", list_price="50.00")
    foreign = services.create_sku(actor=ops, product=other, code="CAB-1", name="标准")
    with pytest.raises(ValidationFailed) as exc:
        contracts.create_contract(actor=rep, customer=regular, title="x",
                                  lines=[{"product": box, "sku": foreign.pk, "quantity": "1"}])
    assert (exc.value.code, exc.value.field) == ("sku_mismatch", "lines.0.sku")
    old = services.create_sku(actor=ops, product=box, code="BOX-OLD", name="旧款")
    services.retire_sku(actor=ops, sku=old)
    with pytest.raises(ValidationFailed) as exc:
        contracts.create_contract(actor=rep, customer=regular, title="x",
                                  lines=[{"product": box, "sku": old, "quantity": "1"}])
    assert exc.value.code == "sku_retired"


def test_the_contract_api_takes_and_shows_a_sku(setup, company, login):
    box, _key_account, regular, _rep = setup
    red = services.create_sku(actor=user_of(company.operations), product=box, code="BOX-RED",
                              name="红色", list_price="120.00")
    client = login(company.rep_a, language="en")
    response = client.post("/api/contracts", {
        "customer_id": regular.pk, "title": "API 红色",
        "lines": [{"product_id": box.pk, "sku_id": red.pk, "quantity": "1"}]},
        content_type="application/json")
    assert response.status_code == 201
    line = response.json()["lines"][0]
    assert (line["sku_id"], line["unit_price"]) == (red.pk, "120.00")
