"""Every write of the finance layer.

Automatic postings run from the spine's and the operations layer's events (subscribers.py);
each is keyed by its source (`receipt:12`, `contract:7:accepted`), so a replayed event finds
its voucher and books nothing twice. The others are actions of finance staff: refunds,
invoices, manual and reversing vouchers, marketing spend.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.catalog.services import check_vat_rate
from weiying.core import audit
from weiying.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from weiying.core.events import emit
from weiying.core.money import ZERO, fen_sum, format_cny, from_fen, money, split_vat, to_decimal
from weiying.core.permissions import employee_of, require
from weiying.core.scope import scoped
from weiying.finance import ledger
from weiying.finance.models import (
    Account,
    Entry,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    MarketingSpend,
    Obligation,
    ObligationStatus,
    Refund,
    Voucher,
)
from weiying.pipeline.choices import ContractStatus
from weiying.pipeline.models import Contract, Receipt

S = ContractStatus


def _exists(key: str) -> bool:
    return Voucher.objects.filter(source_key=key).exists()


def _contract(contract_id: Any) -> Contract:
    return Contract.objects.select_for_update().select_related("customer").get(pk=contract_id)


def _day(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(_("Give the date as YYYY-MM-DD."), code="invalid_date",
                               field=field) from None


def _amount(value: Any, field: str) -> Decimal:
    try:
        amount = to_decimal(value)
    except (TypeError, ValueError):
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0 or money(amount) != amount:
        raise ValidationFailed(_("The amount must be above zero, in yuan and fen."),
                               code="invalid_amount", field=field)
    return amount


# --- automatic postings ------------------------------------------------------------------------
@transaction.atomic
def post_contract_signed(contract_id: int) -> list[Obligation]:
    return ledger.ensure_obligations(_contract(contract_id))


@transaction.atomic
def post_receipt(receipt_id: int) -> Voucher | None:
    key = f"receipt:{receipt_id}"
    receipt = Receipt.objects.get(pk=receipt_id)
    contract = _contract(receipt.contract_id)
    if _exists(key):
        return None
    obligations = ledger.ensure_obligations(contract)
    pieces = ledger.receive(obligations, receipt.amount)
    return ledger.book(
        pieces, obligations=obligations, on=receipt.received_on,
        summary=_("Receipt on contract %(number)s") % {"number": contract.number},
        source="receipt", source_key=key, contract=contract,
    )


@transaction.atomic
def post_acceptance(contract_id: int, *, key: str, accepted_on: Any,
                    quantities: dict[int, Decimal] | None = None) -> Voucher | None:
    """Recognise point-in-time obligations: all that remain (`quantities` None, the whole
    contract accepted) or those of the given contract lines by the accepted quantities (a
    delivery order accepted)."""
    contract = _contract(contract_id)
    if _exists(key):
        return None
    accepted_on = _day(accepted_on, "accepted_on")
    obligations = ledger.ensure_obligations(contract)
    pieces = []
    for ob in obligations:
        if ob.fulfilment == "service" or ob.status != ObligationStatus.OPEN:
            continue
        if quantities is None:
            target = ob.quantity
        elif ob.contract_line_id in quantities:
            target = ob.accepted_quantity + quantities[ob.contract_line_id]
        else:
            continue
        piece = ledger.accept(ob, target)
        if piece is not None:
            pieces.append(piece)
    return ledger.book(
        pieces, obligations=obligations, on=accepted_on,
        summary=_("Revenue recognised on acceptance, contract %(number)s")
        % {"number": contract.number},
        source="acceptance", source_key=key, contract=contract,
    )


@transaction.atomic
def post_cancellation(contract_id: int, *, on: dt.date | None = None) -> Voucher | None:
    """`on` is the day the contract was cancelled (the event's day); today if not given."""
    key = f"contract:{contract_id}:cancelled"
    contract = _contract(contract_id)
    if _exists(key):
        return None
    obligations = ledger.ensure_obligations(contract)
    pieces = ledger.cancel(obligations)
    return ledger.book(
        pieces, obligations=obligations, on=on or timezone.localdate(),
        summary=_("Contract %(number)s cancelled: advance owed back")
        % {"number": contract.number},
        source="cancellation", source_key=key, contract=contract,
    )


# --- refunds -----------------------------------------------------------------------------------
@transaction.atomic
def record_refund(*, actor: Any, contract: Contract, amount: Any, refunded_on: Any,
                  reason: str, external_id: str | None = None) -> Refund:
    """Money given back to the customer. Only what was paid ahead and not yet earned can be
    refunded; the contract's and customer's collected figures drop with it."""
    from weiying.pipeline.services.contracts import give_back_collected

    require(actor, "finance.post")
    if not scoped(Contract.objects.filter(pk=contract.pk), actor).exists():
        raise NotFound(_("This contract does not exist or is outside what you may see."))
    contract = _contract(contract.pk)
    external_id = (external_id or "").strip() or None
    if external_id:
        existing = Refund.objects.filter(external_id=external_id).first()
        if existing is not None:
            if existing.contract_id != contract.pk:
                raise Conflict(_("External id %(id)s was already used for a refund on another "
                                 "contract.") % {"id": external_id},
                               code="external_id_reused", field="external_id")
            return existing
    amount = _amount(amount, "amount")
    refunded_on = _day(refunded_on, "refunded_on")
    if refunded_on > timezone.localdate():
        raise ValidationFailed(_("A refund cannot be dated in the future."),
                               code="future_date", field="refunded_on")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the money is given back."), field="reason")
    obligations = ledger.ensure_obligations(contract)
    held = ledger.advance_held(obligations)
    if amount > held:
        raise ValidationFailed(
            _("Only %(held)s of the money received on this contract has not been earned yet; "
              "refund at most that. Money for what the customer has already accepted comes "
              "back as a sales return, which is booked by a manual voucher.")
            % {"held": format_cny(held)},
            code="refund_exceeds_advance", field="amount",
        )
    employee = employee_of(actor)
    refund = Refund.objects.create(contract=contract, amount=amount, refunded_on=refunded_on,
                                   reason=reason[:255], external_id=external_id,
                                   recorded_by=employee)
    pieces = ledger.refund(obligations, amount)
    ledger.book(pieces, obligations=obligations, on=refunded_on,
                summary=_("Refund on contract %(number)s") % {"number": contract.number},
                source="refund", source_key=f"refund:{refund.pk}", contract=contract,
                actor_employee=employee)
    give_back_collected(contract=contract, amount=amount)
    audit.record(actor, "refund.record", refund, after=audit.snapshot(refund))
    emit("refund.recorded", refund, actor=actor, contract_id=contract.pk, amount=amount,
         refunded_on=refunded_on, owner_id=contract.owner_id)
    return refund


# --- invoices ----------------------------------------------------------------------------------
def invoiced_total(contract: Contract) -> Decimal:
    return from_fen(contract.invoices.filter(status=InvoiceStatus.ISSUED)
                    .aggregate(s=fen_sum("gross"))["s"])


@transaction.atomic
def issue_invoice(*, actor: Any, contract: Contract, number: str, kind: str, issued_on: Any,
                  gross: Any, vat_rate: Any) -> Invoice:
    require(actor, "finance.post")
    if not scoped(Contract.objects.filter(pk=contract.pk), actor).exists():
        raise NotFound(_("This contract does not exist or is outside what you may see."))
    contract = _contract(contract.pk)
    number = (number or "").strip()
    if not number:
        raise ValidationFailed(_("An invoice needs its number."), field="number")
    if Invoice.objects.filter(number=number).exists():
        raise Conflict(_("Invoice %(number)s is already recorded.") % {"number": number},
                       code="duplicate_invoice", field="number")
    if kind not in InvoiceKind.values:
        raise ValidationFailed(_("Pick the invoice type: special (专票) or ordinary (普票)."),
                               field="kind")
    if contract.status == S.CANCELLED:
        raise InvalidTransition(
            _("This contract is cancelled; it takes no invoices. Void the invoices issued on it "
              "instead."), code="contract_cancelled")
    if contract.status not in (S.SIGNED, S.IN_DELIVERY, S.COMPLETED):
        raise InvalidTransition(_("Invoices can be issued once the contract is signed."),
                                code="contract_not_signed")
    gross = _amount(gross, "gross")
    rate = check_vat_rate(vat_rate)
    issued_on = _day(issued_on, "issued_on")
    if issued_on > timezone.localdate():
        raise ValidationFailed(_("An invoice cannot be dated in the future."),
                               code="future_date", field="issued_on")
    already = invoiced_total(contract)
    if already + gross > contract.total:
        raise ValidationFailed(
            _("%(already)s is already invoiced on this contract of %(total)s; this invoice can "
              "be for at most %(left)s.")
            % {"already": format_cny(already), "total": format_cny(contract.total),
               "left": format_cny(contract.total - already)},
            code="invoice_exceeds_contract", field="gross",
        )
    net, vat = split_vat(gross, rate)
    invoice = Invoice.objects.create(
        number=number, contract=contract, kind=kind, issued_on=issued_on, vat_rate=rate,
        gross=gross, net=net, vat=vat, department_id=contract.department_id,
        owner_id=contract.owner_id, recorded_by=employee_of(actor),
    )
    audit.record(actor, "invoice.issue", invoice, after=audit.snapshot(invoice))
    emit("invoice.issued", invoice, actor=actor, contract_id=contract.pk, gross=gross,
         net=net, vat=vat)
    return invoice


@transaction.atomic
def void_invoice(*, actor: Any, invoice: Invoice, reason: str) -> Invoice:
    require(actor, "finance.post")
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status == InvoiceStatus.VOIDED:
        raise Conflict(_("This invoice is already voided."), code="invoice_voided")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the invoice is voided."), field="reason")
    invoice.status = InvoiceStatus.VOIDED
    invoice.void_reason = reason[:255]
    invoice.save(update_fields=["status", "void_reason"])
    audit.record(actor, "invoice.void", invoice, before={"status": "issued"},
                 after={"status": "voided", "reason": reason})
    emit("invoice.voided", invoice, actor=actor, contract_id=invoice.contract_id)
    return invoice


# --- manual vouchers ---------------------------------------------------------------------------
def _manual_lines(lines: Any) -> list[dict[str, Any]]:
    if not lines or len(lines) < 2:
        raise ValidationFailed(_("A voucher needs at least two lines: a debit and a credit."),
                               code="voucher_too_short", field="lines")
    accounts = {a.code: a for a in Account.objects.filter(is_active=True)}
    cleaned = []
    for i, line in enumerate(lines, start=1):
        code = str(line.get("account", "")).strip()
        account = accounts.get(code)
        if account is None:
            raise ValidationFailed(
                _("Line %(n)s: there is no active account %(code)s in the chart.")
                % {"n": i, "code": code or "—"}, code="unknown_account", field=f"lines.{i}")
        amounts = []
        for side in ("debit", "credit"):
            raw = line.get(side) or "0"
            try:
                value = to_decimal(raw)
            except (TypeError, ValueError):
                value = None
            if value is None or not value.is_finite() or value < 0 or money(value) != value:
                raise ValidationFailed(
                    _("Line %(n)s: the %(side)s must be an amount of zero or more, in yuan and "
                      "fen.") % {"n": i, "side": _("debit") if side == "debit" else _("credit")},
                    code="invalid_amount", field=f"lines.{i}.{side}")
            amounts.append(value)
        debit, credit = amounts
        if (debit > 0) == (credit > 0):
            raise ValidationFailed(
                _("Line %(n)s: put the amount either in the debit or in the credit, not both "
                  "and not neither.") % {"n": i}, code="one_side", field=f"lines.{i}")
        cleaned.append({"account": account, "debit": debit, "credit": credit,
                        "summary": str(line.get("summary", ""))[:255]})
    debit = sum((c["debit"] for c in cleaned), ZERO)
    credit = sum((c["credit"] for c in cleaned), ZERO)
    if debit != credit:
        raise ValidationFailed(
            _("The voucher does not balance: debits %(debit)s, credits %(credit)s, a "
              "difference of %(diff)s. Correct the amounts so both sides are equal.")
            % {"debit": format_cny(debit), "credit": format_cny(credit),
               "diff": format_cny(abs(debit - credit))},
            code="voucher_unbalanced", field="lines")
    return cleaned


@transaction.atomic
def post_manual_voucher(*, actor: Any, on: Any, summary: str, lines: Any) -> Voucher:
    require(actor, "finance.post")
    on = _day(on, "on")
    summary = (summary or "").strip()
    if not summary:
        raise ValidationFailed(_("A voucher needs a summary (摘要)."), field="summary")
    cleaned = _manual_lines(lines)
    voucher = ledger.new_voucher(on=on, summary=summary, source="manual", source_key=None,
                                 actor_employee=employee_of(actor), manual=True)
    Entry.objects.bulk_create([
        Entry(voucher=voucher, line=i, account=c["account"], debit=c["debit"],
              credit=c["credit"], summary=c["summary"] or summary, on=on)
        for i, c in enumerate(cleaned, start=1)
    ])
    audit.record(actor, "voucher.post", voucher, after={
        "number": voucher.number, "on": on, "summary": summary,
        "lines": [{"account": c["account"].code, "debit": c["debit"], "credit": c["credit"]}
                  for c in cleaned]})
    emit("voucher.posted", voucher, actor=actor, number=voucher.number, manual=True)
    return voucher


@transaction.atomic
def reverse_voucher(*, actor: Any, voucher: Voucher, on: Any, reason: str) -> Voucher:
    """A reversing voucher (红字冲销) in an open period: every line with its sides swapped.
    Automatic vouchers are reversed by the business event (a refund, a cancellation)."""
    require(actor, "finance.post")
    voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
    if not voucher.is_manual:
        raise InvalidTransition(
            _("Voucher %(number)s was booked by an event; correct it through that event (a "
              "refund, a cancellation) or with a manual voucher.") % {"number": voucher.number},
            code="automatic_voucher")
    if Voucher.objects.filter(reverses=voucher).exists():
        raise Conflict(_("Voucher %(number)s has already been reversed.")
                       % {"number": voucher.number}, code="already_reversed")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the voucher is reversed."), field="reason")
    on = _day(on, "on")
    reversal = ledger.new_voucher(
        on=on, summary=_("Reversal of %(number)s: %(reason)s")
        % {"number": voucher.number, "reason": reason},
        source="reversal", source_key=f"reversal:{voucher.pk}",
        actor_employee=employee_of(actor), manual=True, reverses=voucher)
    Entry.objects.bulk_create([
        Entry(voucher=reversal, line=e.line, account_id=e.account_id, debit=e.credit,
              credit=e.debit, summary=e.summary, on=on, department_id=e.department_id,
              owner_id=e.owner_id, customer_id=e.customer_id, contract_id=e.contract_id)
        for e in voucher.entries.order_by("line")
    ])
    audit.record(actor, "voucher.reverse", reversal,
                 after={"reverses": voucher.number, "reason": reason})
    emit("voucher.posted", reversal, actor=actor, number=reversal.number, manual=True)
    return reversal


# --- marketing spend ---------------------------------------------------------------------------
@transaction.atomic
def record_marketing_spend(*, actor: Any, channel: str, spent_on: Any, amount: Any,
                           note: str = "", department: Any = None,
                           external_id: str | None = None) -> MarketingSpend:
    """Spend on a channel: 销售费用 against the bank."""
    require(actor, "finance.post")
    external_id = (external_id or "").strip() or None
    if external_id:
        existing = MarketingSpend.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing
    channel = (channel or "").strip()
    if not channel:
        raise ValidationFailed(_("Name the channel the money was spent on."), field="channel")
    amount = _amount(amount, "amount")
    spent_on = _day(spent_on, "spent_on")
    employee = employee_of(actor)
    spend = MarketingSpend.objects.create(
        channel=channel[:64], spent_on=spent_on, amount=amount, note=(note or "")[:255],
        department=department, external_id=external_id, recorded_by=employee)
    _book_spend(spend, employee)
    audit.record(actor, "marketing_spend.record", spend, after=audit.snapshot(spend))
    return spend


def _book_spend(spend: MarketingSpend, employee: Any) -> Voucher:
    voucher = ledger.new_voucher(
        on=ledger.posting_date(spend.spent_on),
        summary=_("Marketing spend on %(channel)s") % {"channel": spend.channel},
        source="marketing", source_key=f"marketing:{spend.pk}", actor_employee=employee)
    ledger.entries_from_totals(voucher, {("selling_expense", spend.department_id): spend.amount,
                                         ("bank", spend.department_id): -spend.amount})
    return voucher


@transaction.atomic
def post_marketing_spend(spend_id: int) -> Voucher | None:
    """Book the voucher of a spend recorded without one (history loaded in bulk, opened by
    `weiying open-books`); None when it is booked already."""
    if Voucher.objects.filter(source_key=f"marketing:{spend_id}").exists():
        return None
    spend = MarketingSpend.objects.select_for_update().get(pk=spend_id)
    return _book_spend(spend, spend.recorded_by)

