import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from weiying.catalog import services
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
