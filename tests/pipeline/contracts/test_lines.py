from decimal import Decimal

import pytest

from tests.conftest import user_of
from weiying.core.errors import InvalidTransition, ValidationFailed
from weiying.pipeline.models import ContractLine
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("rate", "net", "vat"),
    [("0.13", "82.29", "10.70"), ("0.09", "85.31", "7.68"), ("0.06", "87.73", "5.26"),
     ("0.01", "92.07", "0.92")],
)
def test_awkward_line_splits_exactly_into_net_and_vat(catalog, rate, net, vat):
    line = svc.price_line(product=catalog.box, quantity="3", unit_price="33.33",
                          discount="0.07", vat_rate=rate)
    assert line.amount == Decimal("92.99")  # 99.99 × 0.93 = 92.9907
    assert (line.net, line.vat) == (Decimal(net), Decimal(vat))
    assert line.net + line.vat == line.amount


def test_contract_totals_are_sums_of_rounded_lines(company, catalog, customers):
    contract = svc.create_contract(
        actor=user_of(company.rep_a), customer=customers.a, title="组合",
        lines=[
            {"product": catalog.box, "quantity": "3", "unit_price": "33.33", "discount": "0.07"},
            {"product": catalog.saas, "quantity": "1", "discount": "0.15"},
            {"product": catalog.box, "quantity": "0.5", "unit_price": "0.01"},
        ],
    )
    # 92.99 (13 %) + 850.00 (6 %: 801.89 + 48.11) + 0.01 (0.005 → 0.01; 13 %: 0.01 + 0.00)
    assert contract.total == Decimal("943.00")
    assert contract.total_net == Decimal("82.29") + Decimal("801.89") + Decimal("0.01")
    assert contract.total_vat == Decimal("10.70") + Decimal("48.11") + Decimal("0.00")
    assert contract.total_net + contract.total_vat == contract.total
    assert contract.max_discount == Decimal("0.15")
    assert ContractLine.objects.filter(contract=contract).count() == 3
    assert contract.number.startswith("HT") and len(contract.number) == 14


def test_line_defaults_come_from_the_product(catalog):
    line = svc.price_line(product=catalog.saas, quantity="2")
    assert (line.unit_price, line.vat_rate, line.discount) == (
        Decimal("1000.00"), Decimal("0.06"), Decimal("0"))
    assert line.amount == Decimal("2000.00")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"quantity": "0"}, "lines.0.quantity", "Line 1: the quantity must be a number above zero."),
        ({"quantity": "-1"}, "lines.0.quantity", "Line 1: the quantity must be a number above zero."),
        ({"unit_price": "-0.01"}, "lines.0.unit_price",
         "Line 1: the unit price must be an amount of zero or more, in yuan and fen."),
        ({"unit_price": "1.001"}, "lines.0.unit_price",
         "Line 1: the unit price must be an amount of zero or more, in yuan and fen."),
        ({"discount": "1"}, "lines.0.discount",
         "Line 1: the discount is a fraction from 0 to below 1 (0.15 = 15% off)."),
        ({"discount": "-0.1"}, "lines.0.discount",
         "Line 1: the discount is a fraction from 0 to below 1 (0.15 = 15% off)."),
        ({"vat_rate": "0.17"}, "lines.0.vat_rate",
         "0.17 is not a VAT rate; use one of 0, 0.01, 0.03, 0.06, 0.09 or 0.13."),
    ],
)
def test_bad_lines_are_refused_with_the_line_named(catalog, changes, field, message):
    with pytest.raises(ValidationFailed) as exc:
        svc.price_lines([{"product": catalog.box, "quantity": "1", **changes}])
    assert exc.value.field == field
    assert str(exc.value.message) == message


def test_zero_price_and_zero_rate_are_allowed(catalog):
    line = svc.price_line(product=catalog.box, quantity="1", unit_price="0", vat_rate="0")
    assert (line.amount, line.net, line.vat) == (Decimal("0.00"), Decimal("0.00"),
                                                 Decimal("0.00"))


def test_retired_product_cannot_go_on_a_new_line(catalog):
    with pytest.raises(ValidationFailed) as exc:
        svc.price_lines([{"product": catalog.box, "quantity": "1"},
                         {"product": catalog.old, "quantity": "1"}])
    assert exc.value.code == "product_retired"
    assert str(exc.value.message) == "Line 2: product P-OLD is retired; pick another."


def test_lines_can_be_edited_only_in_draft(company, catalog, make_contract):
    rep = user_of(company.rep_a)
    draft = make_contract()
    edited = svc.update_contract(actor=rep, contract=draft,
                                 lines=[{"product": catalog.box, "quantity": "10"}])
    assert edited.total == Decimal("333.30")

    approved = make_contract("approved")
    with pytest.raises(InvalidTransition) as exc:
        svc.update_contract(actor=rep, contract=approved, lines=[])
    assert exc.value.code == "contract_locked"
    assert str(exc.value.message) == (
        "This contract is approved; only a draft can be edited. A rejected contract comes "
        "back as a draft.")


def test_new_total_drops_a_plan_made_on_the_draft(company, catalog, make_contract):
    rep = user_of(company.rep_a)
    draft = make_contract()
    svc.plan_instalments(actor=rep, contract=draft, plan=[("2030-01-01", "2000.00")])
    svc.update_contract(actor=rep, contract=draft,
                        lines=[{"product": catalog.box, "quantity": "1"}])
    assert draft.instalments.count() == 0


def test_numbers_follow_the_month_sequence(company, make_contract):
    first, second = make_contract(), make_contract()
    assert first.number[:8] == second.number[:8]
    assert int(second.number[8:]) == int(first.number[8:]) + 1


def test_no_contract_on_a_merged_duplicate(company, customers):
    from weiying.customers.models import Customer

    Customer.objects.filter(pk=customers.a2.pk).update(merged_into=customers.a)
    customers.a2.refresh_from_db()
    with pytest.raises(ValidationFailed) as exc:
        svc.create_contract(actor=user_of(company.manager_a), customer=customers.a2,
                            title="x")
    assert exc.value.code == "customer_merged"
