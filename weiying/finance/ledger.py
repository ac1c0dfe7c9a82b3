"""The booking engine: obligations from contracts, and the movements and vouchers each event
makes.

Every function here runs inside its caller's transaction and expects the obligations it is
given to be locked (`ensure_obligations` reads them under a row lock). The functions that compute pieces change the
obligations' running totals in memory; `book` saves the pieces as movements, writes their
voucher and saves the obligations.

How a piece splits (P = cash applied to the obligation, R = recognised, both VAT included):
- a receipt first settles the receivable (R − P when R > P), then pays ahead; the part paid
  ahead is a contract liability, its VAT (vat_of) waiting as pending VAT;
- recognising from R0 to R1 takes from the contract liability what was paid ahead, and makes
  a receivable of the rest; revenue and output VAT are the piece's net and VAT;
- a refund gives back what was paid ahead (never more), from the contract liability, or from
  the refund payable once the contract is cancelled;
- a cancellation releases what was not recognised and moves any advance to refund payable.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils.translation import gettext as _

from weiying.catalog.models import Fulfilment
from weiying.core.errors import ValidationFailed
from weiying.core.money import ZERO, allocate, money, split_vat
from weiying.finance import chart, rollup
from weiying.finance.models import (
    BALANCE_COLUMNS,
    Entry,
    Movement,
    Obligation,
    ObligationStatus,
    Period,
    PeriodStatus,
    Voucher,
)
from weiying.finance.recognition import point_due, recognition_amounts, service_end, vat_of

# Debit-natured balance columns: a positive amount is a debit. The others are credits.
_DEBIT_COLUMNS = frozenset({"bank", "receivable", "cost", "selling_expense"})


@dataclass
class Piece:
    obligation: Obligation
    kind: str
    amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def add(self, column: str, amount: Decimal) -> None:
        self.amounts[column] += amount

    def nonzero(self) -> bool:
        return any(v != 0 for v in self.amounts.values())


# --- obligations ---------------------------------------------------------------------------
def _components(product: Any) -> list[tuple[Any, Decimal]]:
    from weiying.catalog.bundles import components

    return list(components(product))


def _channel(contract: Any) -> str:
    customer = contract.customer
    return (getattr(customer, "channel", "") or getattr(customer, "source", "") or "")[:64]


def _service_dates(contract: Any, product: Any) -> tuple[dt.date, dt.date]:
    start = contract.start_on or contract.signed_on or contract.created_at.date()
    if contract.start_on and contract.end_on and contract.end_on >= contract.start_on:
        return start, contract.end_on
    return start, service_end(start, product.service_months or 12)


def ensure_obligations(contract: Any) -> list[Obligation]:
    """The contract's obligations, made on first need (idempotent). The contract's total is
    allocated over them by relative standalone selling price; a bundle line is one
    obligation per component. Each allocated price splits into net and VAT at its own rate."""
    existing = list(Obligation.objects.select_for_update().filter(contract=contract)
                    .order_by("seq"))
    if existing:
        return existing
    units = []
    for line in contract.lines.select_related("product").order_by("pk"):
        product = line.product
        parts = _components(product)
        if parts:
            for component, per_bundle in parts:
                qty = per_bundle * line.quantity
                units.append((line, component, line.quantity, component.ssp * qty,
                              component.vat_rate, component.standard_cost * qty))
        else:
            units.append((line, product, line.quantity, product.ssp * line.quantity,
                          line.vat_rate, product.standard_cost * line.quantity))
    if not units:
        return []
    weights = [money(w) for *_h, w, _r, _c in units]
    if sum(weights, ZERO) <= 0:
        weights = [line.amount for line, *_rest in units]
    if sum(weights, ZERO) <= 0:
        weights = [Decimal(1)] * len(units)
    grosses = allocate(contract.total, weights)
    channel = _channel(contract)
    made = []
    for seq, ((line, product, qty, weight, rate, cost), gross) in enumerate(
        zip(units, grosses, strict=True), start=1
    ):
        net, vat = split_vat(gross, rate)
        start = end = None
        if product.fulfilment == Fulfilment.SERVICE:
            start, end = _service_dates(contract, product)
        made.append(Obligation(
            contract=contract, contract_line=line, product=product, seq=seq,
            fulfilment=product.fulfilment, quantity=qty, vat_rate=rate, ssp=money(weight),
            gross=gross, net=net, vat=vat, cost=money(cost), start_on=start, end_on=end,
            department_id=contract.department_id, owner_id=contract.owner_id,
            customer_id=contract.customer_id, channel=channel,
            status=ObligationStatus.SATISFIED if gross == 0 and cost == 0 else ObligationStatus.OPEN,
        ))
    Obligation.objects.bulk_create(made)
    return list(Obligation.objects.select_for_update().filter(contract=contract).order_by("seq"))


# --- pieces ----------------------------------------------------------------------------------
def recognise(ob: Obligation, target: Decimal, kind: str) -> Piece | None:
    """Recognise `ob` up to `target` (VAT included, cumulative)."""
    r0, r1, paid = ob.recognised_gross, min(target, ob.gross), ob.paid_gross
    if r1 <= r0:
        return None
    piece = Piece(ob, kind)
    amounts = recognition_amounts(gross=ob.gross, vat=ob.vat, cost=ob.cost, r0=r0,
                                  vat0=ob.recognised_vat, cost0=ob.cost_booked, paid=paid, r1=r1)
    for column, amount in amounts.items():
        piece.add(column, amount)
    vat, cost = amounts["output_vat"], amounts["cost"]
    ob.recognised_gross = r1
    ob.recognised_vat += vat
    ob.cost_booked += cost
    if ob.recognised_gross + ob.released_gross >= ob.gross:
        ob.status = ObligationStatus.SATISFIED
    return piece


def accept(ob: Obligation, accepted_total: Decimal) -> Piece | None:
    """A point-in-time obligation accepted up to `accepted_total` units (cumulative)."""
    ob.accepted_quantity = min(accepted_total, ob.quantity)
    return recognise(ob, point_due(ob.accepted_quantity, ob.quantity, ob.gross),
                     "recognition")


def receive(obligations: list[Obligation], amount: Decimal) -> list[Piece]:
    """Apply `amount` received: receivables first (in order), then paid ahead (in order)."""
    pieces: dict[int, Piece] = {}
    remaining = amount

    def piece_for(ob: Obligation) -> Piece:
        return pieces.setdefault(ob.pk, Piece(ob, "receipt"))

    live = [ob for ob in obligations if ob.status != ObligationStatus.CANCELLED]
    for ob in live:
        owed = ob.recognised_gross - ob.paid_gross
        if remaining <= 0 or owed <= 0:
            continue
        part = min(owed, remaining)
        p = piece_for(ob)
        p.add("bank", part)
        p.add("receivable", -part)
        ob.paid_gross += part
        remaining -= part
    for ob in live:
        room = ob.gross - ob.released_gross - ob.paid_gross
        if remaining <= 0 or room <= 0:
            continue
        part = min(room, remaining)
        p0 = max(ob.paid_gross, ob.recognised_gross)
        p1 = ob.paid_gross + part
        vat = vat_of(p1, ob.gross, ob.vat) - vat_of(p0, ob.gross, ob.vat)
        p = piece_for(ob)
        p.add("bank", part)
        p.add("contract_liability", part - vat)
        p.add("pending_vat", vat)
        ob.paid_gross = p1
        remaining -= part
    if remaining > 0:
        raise ValidationFailed(
            _("The receipt is %(extra)s more than the contract's obligations can take.")
            % {"extra": remaining}, code="receipt_exceeds_obligations", field="amount",
        )
    return list(pieces.values())


def advance_held(obligations: Iterable[Obligation]) -> Decimal:
    """Cash received and not yet earned: what a refund may give back."""
    return sum((max(ob.paid_gross - ob.recognised_gross, ZERO) for ob in obligations), ZERO)


def refund(obligations: list[Obligation], amount: Decimal) -> list[Piece]:
    """Give back `amount` of what was paid ahead, last obligation first."""
    pieces = []
    remaining = amount
    for ob in reversed(obligations):
        room = ob.paid_gross - ob.recognised_gross
        if remaining <= 0 or room <= 0:
            continue
        part = min(room, remaining)
        p1 = ob.paid_gross - part
        p = Piece(ob, "refund")
        p.add("bank", -part)
        if ob.status == ObligationStatus.CANCELLED:
            p.add("refund_payable", -part)
        else:
            vat = vat_of(ob.paid_gross, ob.gross, ob.vat) - vat_of(p1, ob.gross, ob.vat)
            p.add("contract_liability", -(part - vat))
            p.add("pending_vat", -vat)
        ob.paid_gross = p1
        remaining -= part
        pieces.append(p)
    if remaining > 0:  # the caller checked advance_held; this is a bug guard
        raise ValidationFailed(_("The refund is more than was paid ahead."), field="amount")
    return pieces


def cancel(obligations: list[Obligation]) -> list[Piece]:
    """Release what was not recognised; an advance becomes a refund owed to the customer."""
    pieces = []
    for ob in obligations:
        if ob.status == ObligationStatus.CANCELLED:
            continue
        advance = ob.paid_gross - ob.recognised_gross
        if advance > 0:
            vat = (vat_of(ob.paid_gross, ob.gross, ob.vat)
                   - vat_of(ob.recognised_gross, ob.gross, ob.vat))
            p = Piece(ob, "cancellation")
            p.add("contract_liability", -(advance - vat))
            p.add("pending_vat", -vat)
            p.add("refund_payable", advance)
            pieces.append(p)
        ob.released_gross = ob.gross - ob.recognised_gross
        ob.status = ObligationStatus.CANCELLED
    return pieces


# --- periods ---------------------------------------------------------------------------------
def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def closed_through() -> tuple[int, int] | None:
    """The last closed month. Months close in order, so every month up to it is closed."""
    last = (Period.objects.filter(status=PeriodStatus.CLOSED).order_by("-year", "-month")
            .values_list("year", "month").first())
    return (last[0], last[1]) if last else None


def posting_date(day: dt.date) -> dt.date:
    """`day`, or the first day of the first open month when `day` falls in a closed one: a
    closed period never changes."""
    through = closed_through()
    if through is None or (day.year, day.month) > through:
        return day
    year, month = next_month(*through)
    return dt.date(year, month, 1)


def _take_number(on: dt.date) -> tuple[int, str]:
    through = closed_through()
    if through is not None and (on.year, on.month) <= through:
        raise ValidationFailed(
            _("Period %(period)s is closed; book the correction in an open period.")
            % {"period": f"{on.year}-{on.month:02d}"}, code="period_closed", field="on",
        )
    period, _created = Period.objects.get_or_create(year=on.year, month=on.month)
    period = Period.objects.select_for_update().get(pk=period.pk)
    seq = period.next_voucher
    Period.objects.filter(pk=period.pk).update(next_voucher=F("next_voucher") + 1)
    return seq, f"{on:%Y%m}-{seq:05d}"


def new_voucher(*, on: dt.date, summary: str, source: str, source_key: str | None,
                contract: Any = None, actor_employee: Any = None,
                manual: bool = False, reverses: Voucher | None = None) -> Voucher:
    seq, number = _take_number(on)
    return Voucher.objects.create(
        number=number, seq=seq, on=on, year=on.year, month=on.month, summary=summary[:255],
        source=source, source_key=source_key, contract=contract, is_manual=manual,
        created_by=actor_employee, reverses=reverses,
    )


def entries_from_totals(voucher: Voucher, totals: dict[tuple[str, Any], Decimal],
                        dims: dict[str, Any] | None = None, summary: str = "") -> list[Entry]:
    """Entries for {(role, department_id): signed amount}; cost splits into its two sides."""
    rows: dict[tuple[str, Any], Decimal] = defaultdict(lambda: ZERO)
    for (column, dept), amount in totals.items():
        if column == "cost":
            rows[("cogs", dept)] += amount
            continue
        if column.startswith("cost_credit:"):
            rows[(column.split(":", 1)[1], dept)] -= amount
            continue
        rows[(column, dept)] += amount if column in _DEBIT_COLUMNS else -amount
    entries = []
    line = 0
    for (role, dept), signed in sorted(rows.items(), key=lambda kv: (_ORDER.get(kv[0][0], 99),
                                                                    str(kv[0][1]))):
        if signed == 0:
            continue
        line += 1
        entry_dims = dict(dims or {})
        if dept is not None:
            entry_dims["department_id"] = dept
        entries.append(Entry(
            voucher=voucher, line=line, account_id=chart.account_id(role),
            summary=(summary or voucher.summary)[:255], on=voucher.on,
            debit=signed if signed > 0 else ZERO, credit=-signed if signed < 0 else ZERO,
            **entry_dims,
        ))
    debit = sum((e.debit for e in entries), ZERO)
    credit = sum((e.credit for e in entries), ZERO)
    if debit != credit:
        raise AssertionError(f"voucher {voucher.number} does not balance: {debit} != {credit}")
    Entry.objects.bulk_create(entries)
    return entries


_ORDER = {role: i for i, role in enumerate(
    ["bank", "receivable", "contract_liability", "pending_vat", "refund_payable", "revenue",
     "output_vat", "cogs", "inventory", "fulfilment_cost"])}


def _cost_credit_role(fulfilment: str) -> str:
    return "inventory" if fulfilment == Fulfilment.GOODS else "fulfilment_cost"


def book(pieces: list[Piece], *, obligations: Iterable[Obligation], on: dt.date, summary: str,
         source: str, source_key: str, contract: Any,
         actor_employee: Any = None) -> Voucher | None:
    """Save `pieces` as movements under one voucher dated on the posting date of `on`, and
    save the running totals of `obligations` (every one the event touched)."""
    pieces = [p for p in pieces if p.nonzero()]
    voucher = None
    posted = posting_date(on)
    if pieces:
        voucher = new_voucher(on=posted, summary=summary, source=source, source_key=source_key,
                              contract=contract, actor_employee=actor_employee)
        totals: dict[tuple[str, Any], Decimal] = defaultdict(lambda: ZERO)
        movements = []
        for p in pieces:
            ob = p.obligation
            for column, amount in p.amounts.items():
                totals[(column, None)] += amount
                if column == "cost":
                    totals[(f"cost_credit:{_cost_credit_role(ob.fulfilment)}", None)] += amount
            movements.append(Movement(
                obligation=ob, contract_id=ob.contract_id, voucher=voucher, kind=p.kind,
                on=posted, event_on=on, department_id=ob.department_id, owner_id=ob.owner_id,
                customer_id=ob.customer_id, product_id=ob.product_id, channel=ob.channel,
                **{c: p.amounts.get(c, ZERO) for c in BALANCE_COLUMNS},
            ))
        Movement.objects.bulk_create(movements)
        rollup.add_voucher(voucher.pk, posted.year, posted.month)
        entries_from_totals(voucher, totals, dims={
            "department_id": contract.department_id, "owner_id": contract.owner_id,
            "customer_id": contract.customer_id, "contract_id": contract.pk,
        })
    save_obligations(obligations)
    return voucher


def save_obligations(obligations: Iterable[Obligation]) -> None:
    for ob in obligations:
        ob.save(update_fields=["recognised_gross", "recognised_vat", "cost_booked",
                               "paid_gross", "released_gross", "status", "accepted_quantity"])


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
