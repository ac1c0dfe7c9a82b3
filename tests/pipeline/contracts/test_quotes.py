from decimal import Decimal

import pytest

from tests.conftest import user_of
from weiying.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from weiying.core.models import AuditLog
from weiying.pipeline.services import contracts as svc
from weiying.pipeline.services import quotes as qsvc

pytestmark = pytest.mark.django_db


@pytest.fixture
def quote(company, catalog, customers):
    return qsvc.create_quote(
        actor=user_of(company.rep_a), customer=customers.a, valid_until="2030-01-31",
        lines=[{"product": catalog.box, "quantity": "3", "unit_price": "33.33",
                "discount": "0.07"},
               {"product": catalog.saas, "quantity": "1", "discount": "0.2",
                "description": "首年"}],
    )


def test_quote_is_numbered_and_priced_like_a_contract(quote):
    assert quote.number.startswith("BJ") and len(quote.number) == 14
    assert quote.total == Decimal("892.99")  # 92.99 + 800.00
    assert quote.status == "draft"
    assert quote.owner.number == "E030"


def test_quote_moves_draft_sent_accepted(company, quote):
    rep = user_of(company.rep_a)
    assert qsvc.quote_actions(rep, quote) == ["send", "convert"]
    quote = qsvc.send_quote(actor=rep, quote=quote)
    assert quote.status == "sent"
    with pytest.raises(InvalidTransition) as exc:
        qsvc.send_quote(actor=rep, quote=quote)
    assert str(exc.value.message) == (
        "This quote has been sent; record whether the customer accepted it.")
    quote = qsvc.accept_quote(actor=rep, quote=quote)
    assert quote.status == "accepted"
    assert list(AuditLog.objects.filter(object_type="pipeline.quote").order_by("pk")
                .values_list("action", flat=True)) == ["quote.create", "quote.send",
                                                       "quote.accept"]


def test_rejected_quote_cannot_be_converted(company, quote):
    rep = user_of(company.rep_a)
    quote = qsvc.reject_quote(actor=rep, quote=qsvc.send_quote(actor=rep, quote=quote))
    with pytest.raises(InvalidTransition) as exc:
        qsvc.convert_quote(actor=rep, quote=quote)
    assert str(exc.value.message) == "This quote was rejected; start a new quote instead."


def test_convert_copies_the_lines_into_a_draft_contract(company, quote):
    rep = user_of(company.rep_a)
    contract = qsvc.convert_quote(actor=rep, quote=quote)
    assert contract.status == "draft" and contract.quote_id == quote.pk
    assert contract.number.startswith("HT")
    assert contract.total == quote.total == Decimal("892.99")
    assert contract.max_discount == Decimal("0.2")
    got = [(line.product.code, line.quantity, line.unit_price, line.discount, line.vat_rate,
            line.amount, line.description) for line in contract.lines.order_by("pk")]
    want = [(line.product.code, line.quantity, line.unit_price, line.discount, line.vat_rate,
             line.amount, line.description) for line in quote.lines.order_by("pk")]
    assert got == want
    quote.refresh_from_db()
    assert quote.status == "accepted"
    # the 20 % discount makes the converted contract wait for a manager
    assert svc.submit_contract(actor=rep, contract=contract).status == "pending_approval"


def test_a_quote_converts_once(company, quote):
    rep = user_of(company.rep_a)
    contract = qsvc.convert_quote(actor=rep, quote=quote)
    with pytest.raises(Conflict) as exc:
        qsvc.convert_quote(actor=rep, quote=quote)
    assert exc.value.code == "quote_already_converted"
    assert str(exc.value.message) == (
        f"This quote was already converted into contract {contract.number}.")
    # once that contract is cancelled it may be converted again
    svc.cancel_contract(actor=user_of(company.manager_a), contract=contract, reason="重做")
    assert qsvc.convert_quote(actor=rep, quote=quote).pk != contract.pk


def test_quotes_are_scoped_to_their_owner(company, quote):
    with pytest.raises(NotFound):
        qsvc.send_quote(actor=user_of(company.rep_b), quote=quote)
    with pytest.raises(NotFound):
        qsvc.convert_quote(actor=user_of(company.rep_a2), quote=quote)


def test_quote_for_an_invisible_customer_is_refused(company, catalog, customers):
    with pytest.raises(NotFound):
        qsvc.create_quote(actor=user_of(company.rep_b), customer=customers.a,
                          lines=[{"product": catalog.box, "quantity": "1"}])


def test_only_a_draft_quote_is_edited(company, catalog, quote):
    rep = user_of(company.rep_a)
    edited = qsvc.update_quote(actor=rep, quote=quote,
                               lines=[{"product": catalog.box, "quantity": "1"}])
    assert edited.total == Decimal("33.33")
    qsvc.send_quote(actor=rep, quote=quote)
    with pytest.raises(InvalidTransition) as exc:
        qsvc.update_quote(actor=rep, quote=quote, lines=[])
    assert exc.value.code == "quote_locked"


def test_sending_needs_lines(company, customers):
    rep = user_of(company.rep_a)
    empty = qsvc.create_quote(actor=rep, customer=customers.a)
    with pytest.raises(ValidationFailed) as exc:
        qsvc.send_quote(actor=rep, quote=empty)
    assert exc.value.code == "no_lines"
