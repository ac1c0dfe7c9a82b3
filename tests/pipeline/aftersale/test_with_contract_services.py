import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.pipeline.selectors.aftersale import customer_value, repurchase_due, upsell_candidates
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db


def test_after_sale_lists_follow_contracts_walked_through_their_services(company):
    # given a customer of rep_a who signs, takes delivery, pays part and completes
    day = timezone.localdate() - dt.timedelta(days=70)
    refill = f.product("R60", category="耗材", lifecycle_days=60, price="500.00")
    other = f.product("R61", category="耗材", price="80.00")
    buyer = f.customer("上海甲公司", company.rep_a)
    rep, ops = user_of(company.rep_a), user_of(company.operations)
    contract = svc.create_contract(actor=rep, customer=buyer, title="耗材年单", lines=[
        {"product": refill, "quantity": "2", "unit_price": "500.00"},
    ])
    contract = svc.submit_contract(actor=rep, contract=contract)
    contract = svc.sign_contract(actor=user_of(company.finance), contract=contract,
                                 signed_on=day)
    svc.record_receipt(actor=user_of(company.finance), contract=contract, amount="400.00",
                       received_on=day, method="bank")
    contract = svc.record_delivery(actor=ops, contract=contract, delivered_on=day)
    contract = svc.record_acceptance(actor=ops, contract=contract, accepted_on=day)
    svc.complete_contract(actor=ops, contract=contract, completed_on=day)

    # then the value list shows the roll-ups the contract services kept
    [row] = customer_value(rep).items
    assert (row.total_signed, row.total_collected, row.outstanding) == (
        Decimal("1000.00"), Decimal("400.00"), Decimal("600.00"))
    assert (row.last_purchase_at, row.contract_count, row.open_ticket_count) == (day, 1, 0)
    # and the refill is 10 days overdue; the other consumable is the upsell suggestion
    [due] = repurchase_due(rep).items
    assert (due.product, due.last_purchase, due.days_overdue) == (refill, day, 10)
    [candidate] = upsell_candidates(rep).items
    assert (candidate.customer, candidate.suggestions) == (buyer, [other])
    assert customer_value(user_of(company.rep_b)).items == []
