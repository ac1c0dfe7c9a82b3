"""Quotes (报价单): priced lines like a contract's, draft → sent → accepted / rejected, and
the conversion of a quote into a draft contract with the same lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core import audit
from weiying.core.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from weiying.core.permissions import require
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.choices import ContractStatus, QuoteStatus
from weiying.pipeline.models import Contract, Opportunity, Quote
from weiying.pipeline.services import contracts as contract_services

Q_ = QuoteStatus

# action: (source states, target state)
QUOTE_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "send": ((Q_.DRAFT,), Q_.SENT),
    "accept": ((Q_.SENT,), Q_.ACCEPTED),
    "reject": ((Q_.SENT,), Q_.REJECTED),
    "convert": ((Q_.DRAFT, Q_.SENT, Q_.ACCEPTED), Q_.ACCEPTED),
}
QUOTE_ACTION_LABELS = {
    "send": gettext_lazy("Mark sent"),
    "accept": gettext_lazy("Customer accepted"),
    "reject": gettext_lazy("Customer rejected"),
    "convert": gettext_lazy("Convert to contract"),
}
_STATE_HINT = {
    Q_.DRAFT: gettext_lazy("This quote is a draft; mark it sent first."),
    Q_.SENT: gettext_lazy("This quote has been sent; record whether the customer accepted it."),
    Q_.ACCEPTED: gettext_lazy("This quote is accepted; convert it into a contract."),
    Q_.REJECTED: gettext_lazy("This quote was rejected; start a new quote instead."),
}


def lock_quote(actor: Any, quote: Quote) -> Quote:
    if actor is not None and not scoped(Quote.objects.filter(pk=quote.pk), actor).exists():
        raise NotFound(_("This quote does not exist or is outside what you may see."))
    return Quote.objects.select_for_update().get(pk=quote.pk)


def _check(action: str, actor: Any, quote: Quote) -> str:
    if actor is not None:
        require(actor, "contract.edit")
    sources, target = QUOTE_TRANSITIONS[action]
    if quote.status not in sources:
        raise InvalidTransition(str(_STATE_HINT[quote.status]))
    return target


def quote_actions(user: Any, quote: Quote) -> list[str]:
    allowed = []
    for action in QUOTE_TRANSITIONS:
        try:
            _check(action, user, quote)
        except DomainError:
            continue
        allowed.append(action)
    return allowed


def _valid_until(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(_("Give a date as YYYY-MM-DD."),
                                   field="valid_until") from None
    return value


@transaction.atomic
def create_quote(
    *, actor: Any, customer: Customer, lines: Iterable[dict[str, Any]] = (),
    opportunity: Opportunity | None = None, valid_until: Any = None, owner: Any = None,
) -> Quote:
    if actor is not None:
        require(actor, "contract.edit")
    contract_services.visible_customer(actor, customer)
    if opportunity is not None and opportunity.customer_id != customer.pk:
        raise ValidationFailed(_("This opportunity belongs to another customer."),
                               field="opportunity")
    owner = contract_services.owner_for(actor, customer, owner)
    priced = contract_services.price_lines(lines, customer=customer)
    quote = contract_services.create_numbered(
        Quote, "BJ", customer=customer, opportunity=opportunity, owner=owner,
        valid_until=_valid_until(valid_until),
        total=contract_services.totals(priced)["total"],
    )
    contract_services.write_lines(priced, quote=quote)
    audit.record(actor, "quote.create", quote,
                 after={**(audit.snapshot(quote) or {}), "lines": len(priced)})
    return quote


@transaction.atomic
def update_quote(*, actor: Any, quote: Quote, lines: Iterable[dict[str, Any]],
                 valid_until: Any = None) -> Quote:
    if actor is not None:
        require(actor, "contract.edit")
    quote = lock_quote(actor, quote)
    if quote.status != Q_.DRAFT:
        raise InvalidTransition(
            _("This quote is %(status)s; only a draft can be edited. Start a new quote "
              "instead.") % {"status": str(quote.get_status_display()).lower()},
            code="quote_locked",
        )
    before = audit.snapshot(quote, ["total", "valid_until"])
    priced = contract_services.price_lines(lines, customer=quote.customer)
    contract_services.write_lines(priced, quote=quote)
    quote.total = contract_services.totals(priced)["total"]
    quote.valid_until = _valid_until(valid_until)
    quote.save(update_fields=["total", "valid_until"])
    audit.record(actor, "quote.update", quote, before=before,
                 after=audit.snapshot(quote, ["total", "valid_until"]))
    return quote


def _move(actor: Any, quote: Quote, action: str) -> Quote:
    quote = lock_quote(actor, quote)
    target = _check(action, actor, quote)
    if action == "send" and not quote.lines.exists():
        raise ValidationFailed(_("Add at least one line before sending this quote."),
                               code="no_lines")
    before = quote.status
    quote.status = target
    quote.save(update_fields=["status"])
    audit.record(actor, f"quote.{action}", quote, before={"status": before},
                 after={"status": target})
    return quote


@transaction.atomic
def send_quote(*, actor: Any, quote: Quote) -> Quote:
    return _move(actor, quote, "send")


@transaction.atomic
def accept_quote(*, actor: Any, quote: Quote) -> Quote:
    return _move(actor, quote, "accept")


@transaction.atomic
def reject_quote(*, actor: Any, quote: Quote) -> Quote:
    return _move(actor, quote, "reject")


@transaction.atomic
def convert_quote(*, actor: Any, quote: Quote, title: str = "") -> Contract:
    """A draft contract with the quote's lines, owner and opportunity; the quote becomes
    accepted. A quote converts once (unless that contract was cancelled)."""
    quote = lock_quote(actor, quote)
    _check("convert", actor, quote)
    live = Contract.objects.filter(quote=quote).exclude(status=ContractStatus.CANCELLED).first()
    if live is not None:
        raise Conflict(
            _("This quote was already converted into contract %(number)s.")
            % {"number": live.number},
            code="quote_already_converted",
        )
    lines = list(quote.lines.select_related("product").order_by("pk"))
    if not lines:
        raise ValidationFailed(_("Add at least one line before converting this quote."),
                               code="no_lines")
    customer = quote.customer
    title = (title or "").strip() or (
        quote.opportunity.name if quote.opportunity_id else customer.name
    )
    contract = contract_services.create_contract(
        actor=actor, customer=customer, title=title,
        lines=contract_services.line_dicts(lines), owner=quote.owner,
        opportunity=quote.opportunity, quote=quote,
    )
    before = quote.status
    if quote.status != Q_.ACCEPTED:
        quote.status = Q_.ACCEPTED
        quote.save(update_fields=["status"])
    audit.record(actor, "quote.convert", quote, before={"status": before},
                 after={"status": quote.status, "contract": contract.pk})
    return contract
