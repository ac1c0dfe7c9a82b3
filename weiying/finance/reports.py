"""The finance layer's reports, read from the subledger through the caller's data scope.

Every report takes a `Slice`: the company (nothing set), a department subtree, a rep, a
product, a channel or a customer, in any combination. Finance sees everything; a manager sees
the movements booked in their subtree.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from weiying.core import tree
from weiying.core.errors import ValidationFailed
from weiying.core.money import ZERO, fen_sum, from_fen, money
from weiying.core.permissions import require
from weiying.core.scope import scoped
from weiying.finance.models import (
    BALANCE_COLUMNS,
    Invoice,
    InvoiceStatus,
    MarketingSpend,
    Movement,
    MovementMonth,
    Refund,
)
from weiying.pipeline.models import Contract, Receipt

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30), ("31-90", 31, 90), ("91-180", 91, 180), ("180+", 181, None),
)


@dataclass(frozen=True)
class Slice:
    department: Any = None  # a Department: its whole subtree
    owner: Any = None
    product: Any = None
    channel: str = ""
    customer: Any = None

    def movement_q(self) -> Q:
        q = Q()
        if self.department is not None:
            q &= tree.subtree_q("department__path", self.department.path)
        if self.owner is not None:
            q &= Q(owner_id=self.owner.pk)
        if self.product is not None:
            q &= Q(product_id=self.product.pk)
        if self.channel:
            q &= Q(channel=self.channel)
        if self.customer is not None:
            q &= Q(customer_id=self.customer.pk)
        return q

    def contract_q(self, prefix: str = "") -> Q:
        """The same slice on contracts (no product: a contract spans products)."""
        q = Q()
        if self.department is not None:
            q &= tree.subtree_q(f"{prefix}department__path", self.department.path)
        if self.owner is not None:
            q &= Q(**{f"{prefix}owner_id": self.owner.pk})
        if self.channel:
            q &= Q(**{f"{prefix}customer__channel": self.channel}) | (
                Q(**{f"{prefix}customer__channel": ""})
                & Q(**{f"{prefix}customer__source": self.channel}))
        if self.customer is not None:
            q &= Q(**{f"{prefix}customer_id": self.customer.pk})
        return q


def check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise ValidationFailed(_("The period ends before it starts; swap the dates."),
                               code="invalid_range", field="end")


def movements(user: Any, where: Slice | None = None) -> QuerySet[Movement]:
    require(user, "finance.view")
    qs = scoped(Movement.objects.all(), user)
    return qs.filter((where or Slice()).movement_q())


def _yuan(row: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        row[name] = from_fen(row[name])
    return row


# --- the bridge --------------------------------------------------------------------------------
@dataclass
class Bridge:
    start: dt.date
    end: dt.date
    cash: Decimal
    revenue: Decimal
    output_vat: Decimal
    receivable_open: Decimal
    receivable_close: Decimal
    liability_open: Decimal
    liability_close: Decimal
    refund_open: Decimal
    refund_close: Decimal
    sales_cash: Decimal | None = None  # receipts less refunds, as the sales pages count them

    @property
    def receivable_increase(self) -> Decimal:
        return self.receivable_close - self.receivable_open

    @property
    def liability_increase(self) -> Decimal:
        return self.liability_close - self.liability_open

    @property
    def refund_increase(self) -> Decimal:
        return self.refund_close - self.refund_open

    @property
    def explained(self) -> Decimal:
        """Revenue + its VAT − increase in receivables + increase in contract liabilities
        (VAT included) + increase in refunds owed."""
        return (self.revenue + self.output_vat - self.receivable_increase
                + self.liability_increase + self.refund_increase)

    @property
    def difference(self) -> Decimal:
        return self.cash - self.explained

    @property
    def timing(self) -> Decimal | None:
        """Receipts dated in a closed period and booked in the next open one."""
        return None if self.sales_cash is None else self.sales_cash - self.cash

    def items(self) -> list[tuple[str, Decimal]]:
        return [
            (_("Revenue recognised (VAT excluded)"), self.revenue),
            (_("Output VAT on that revenue"), self.output_vat),
            (_("Less: increase in receivables"), -self.receivable_increase),
            (_("Add: increase in contract liabilities (VAT included)"), self.liability_increase),
            (_("Add: increase in refunds owed to customers"), self.refund_increase),
        ]


def _month_first(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month_first(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _range_sums(user: Any, where: Slice, lo: dt.date | None, hi: dt.date) -> dict[str, Decimal]:
    """Each balance column summed over the movements booked from `lo` (or the beginning) to
    `hi`: whole months from the monthly roll-up, the days at either end from the movements."""
    totals = {c: ZERO for c in BALANCE_COLUMNS}

    def add(row: dict[str, Any]) -> None:
        for c in BALANCE_COLUMNS:
            totals[c] += from_fen(row[c])

    def from_movements(a: dt.date | None, b: dt.date) -> None:
        qs = movements(user, where).filter(on__lte=b)
        if a is not None:
            qs = qs.filter(on__gte=a)
        add(qs.aggregate(**{c: fen_sum(c) for c in BALANCE_COLUMNS}))

    if where.customer is not None:  # the roll-up has no customer column
        from_movements(lo, hi)
        return totals
    first = lo if lo is None or lo.day == 1 else _next_month_first(lo)
    after = _next_month_first(hi)
    last = hi if after - dt.timedelta(days=1) == hi else _month_first(hi) - dt.timedelta(days=1)
    if first is not None and first > last:
        from_movements(lo, hi)
        return totals
    months = scoped(MovementMonth.objects.all(), user).filter(where.movement_q()).filter(
        period__lte=last.year * 100 + last.month)
    if first is not None:
        months = months.filter(period__gte=first.year * 100 + first.month)
    add(months.aggregate(**{c: Coalesce(Sum(c), 0) for c in BALANCE_COLUMNS}))
    if lo is not None and lo < first:
        from_movements(lo, first - dt.timedelta(days=1))
    if last < hi:
        from_movements(last + dt.timedelta(days=1), hi)
    return totals


def bridge(user: Any, start: dt.date, end: dt.date, where: Slice | None = None) -> Bridge:
    check_range(start, end)
    require(user, "finance.view")
    where = where or Slice()
    if (where.customer is None and start.day == 1
            and _next_month_first(end) - dt.timedelta(days=1) == end):
        # Whole months (the usual case): opening balances and the period's flows in one read
        # of the roll-up.
        p0, p1 = start.year * 100 + start.month, end.year * 100 + end.month
        before, inside = Q(period__lt=p0), Q(period__gte=p0, period__lte=p1)
        row = (scoped(MovementMonth.objects.all(), user).filter(where.movement_q())
               .filter(period__lte=p1).aggregate(
                   **{f"o_{c}": Coalesce(Sum(c, filter=before), 0) for c in BALANCE_COLUMNS},
                   **{f"f_{c}": Coalesce(Sum(c, filter=inside), 0) for c in BALANCE_COLUMNS}))
        opening = {c: from_fen(row[f"o_{c}"]) for c in BALANCE_COLUMNS}
        flows = {c: from_fen(row[f"f_{c}"]) for c in BALANCE_COLUMNS}
    else:
        opening = _range_sums(user, where, None, start - dt.timedelta(days=1))
        flows = _range_sums(user, where, start, end)

    def closing(column: str) -> Decimal:
        return opening[column] + flows[column]

    result = Bridge(
        start=start, end=end, cash=flows["bank"], revenue=flows["revenue"],
        output_vat=flows["output_vat"], receivable_open=opening["receivable"],
        receivable_close=closing("receivable"),
        liability_open=opening["contract_liability"] + opening["pending_vat"],
        liability_close=closing("contract_liability") + closing("pending_vat"),
        refund_open=opening["refund_payable"], refund_close=closing("refund_payable"),
    )
    if where.product is None:
        contracts = scoped(Contract.objects.all(), user).filter(where.contract_q())
        received = from_fen(Receipt.objects.filter(
            contract__in=contracts, received_on__gte=start, received_on__lte=end,
        ).aggregate(s=fen_sum("amount"))["s"])
        refunded = from_fen(Refund.objects.filter(
            contract__in=contracts, refunded_on__gte=start, refunded_on__lte=end,
        ).aggregate(s=fen_sum("amount"))["s"])
        result.sales_cash = received - refunded
    return result


# --- revenue and margin ------------------------------------------------------------------------
GROUPS = {
    "department": ("department_id", "department__name"),
    "owner": ("owner_id", "owner__name"),
    "product": ("product_id", "product__name"),
    "channel": ("channel", "channel"),
    "contract": ("contract_id", "contract__number"),
    "customer": ("customer_id", "customer__name"),
}


def revenue_by(user: Any, start: dt.date, end: dt.date, by: str,
               where: Slice | None = None) -> list[dict[str, Any]]:
    """Revenue recognised, its VAT, cost of sales and gross margin per group, largest first."""
    if by not in GROUPS:
        raise ValidationFailed(_("Group by one of: department, owner, product, channel, "
                                 "contract, customer."), code="invalid_group", field="by")
    check_range(start, end)
    key, label = GROUPS[by]
    rows = (movements(user, where).filter(on__gte=start, on__lte=end)
            .values(key, label)
            .annotate(revenue=fen_sum("revenue"), output_vat=fen_sum("output_vat"),
                      cost=fen_sum("cost"))
            .order_by("-revenue"))
    out = []
    for row in rows:
        _yuan(row, "revenue", "output_vat", "cost")
        if row["revenue"] == 0 and row["cost"] == 0:
            continue
        margin = row["revenue"] - row["cost"]
        out.append({
            "key": row[key], "label": row[label] or "—", "revenue": row["revenue"],
            "output_vat": row["output_vat"], "cost": row["cost"], "margin": margin,
            "margin_rate": (margin / row["revenue"]).quantize(Decimal("0.0001"))
            if row["revenue"] else None,
        })
    return out


# --- balances ----------------------------------------------------------------------------------
def receivables_ageing(user: Any, as_of: dt.date,
                       where: Slice | None = None) -> list[dict[str, Any]]:
    """Receivables outstanding on `as_of` per contract, aged from the day each part was
    recognised; payments settle the oldest part first."""
    layers: dict[int, list[list[Any]]] = defaultdict(list)
    contract_of: dict[int, int] = {}
    rows = (movements(user, where).filter(on__lte=as_of).exclude(receivable=0)
            .order_by("obligation_id", "on", "pk")
            .values_list("obligation_id", "contract_id", "on", "receivable"))
    for obligation_id, contract_id, on, amount in rows.iterator():
        amount = money(amount)
        contract_of[obligation_id] = contract_id
        stack = layers[obligation_id]
        if amount > 0:
            stack.append([on, amount])
            continue
        left = -amount
        while left > 0 and stack:
            take = min(left, stack[0][1])
            stack[0][1] -= take
            left -= take
            if stack[0][1] == 0:
                stack.pop(0)
    per_contract: dict[int, dict[str, Decimal]] = defaultdict(
        lambda: {name: ZERO for name, *_r in AGE_BUCKETS})
    for obligation_id, stack in layers.items():
        for on, amount in stack:
            age = (as_of - on).days
            for name, low, high in AGE_BUCKETS:
                if age >= low and (high is None or age <= high):
                    per_contract[contract_of[obligation_id]][name] += amount
                    break
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=per_contract)
                 .select_related("customer", "owner")}
    out = []
    for contract_id, buckets in per_contract.items():
        total = sum(buckets.values(), ZERO)
        if total == 0:
            continue
        c = contracts[contract_id]
        out.append({"contract": c, "customer": c.customer, "owner": c.owner,
                    "buckets": buckets, "total": total})
    out.sort(key=lambda r: -r["total"])
    return out


def ageing_totals(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    totals = {name: ZERO for name, *_r in AGE_BUCKETS}
    for row in rows:
        for name in totals:
            totals[name] += row["buckets"][name]
    totals["total"] = sum(totals.values(), ZERO)
    return totals


def contract_liabilities(user: Any, as_of: dt.date,
                         where: Slice | None = None) -> list[dict[str, Any]]:
    """Money received for what is not yet delivered, per contract, on `as_of`."""
    rows = (movements(user, where).filter(on__lte=as_of).values("contract_id")
            .annotate(net=fen_sum("contract_liability"), vat=fen_sum("pending_vat"),
                      owed=fen_sum("refund_payable")))
    rows = [_yuan(r, "net", "vat", "owed") for r in rows]
    rows = [r for r in rows if r["net"] or r["vat"] or r["owed"]]
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=[r["contract_id"] for r in rows])
                 .select_related("customer", "owner")}
    out = [{"contract": contracts[r["contract_id"]], "net": r["net"], "vat": r["vat"],
            "total": r["net"] + r["vat"], "refund_owed": r["owed"]} for r in rows]
    out.sort(key=lambda r: -(r["total"] + r["refund_owed"]))
    return out


def invoiced_not_collected(user: Any, as_of: dt.date,
                           where: Slice | None = None) -> list[dict[str, Any]]:
    """Per contract: invoiced, collected and recognised on `as_of`, where invoiced > collected."""
    require(user, "finance.view")
    where = where or Slice()
    contracts = scoped(Contract.objects.all(), user).filter(where.contract_q())
    def per_contract(qs: QuerySet[Any], column: Any) -> dict[int, Decimal]:
        return {pk: from_fen(s) for pk, s in qs.values("contract_id")
                .annotate(s=fen_sum(column)).values_list("contract_id", "s")}

    invoiced = per_contract(Invoice.objects.filter(
        contract__in=contracts, issued_on__lte=as_of, status=InvoiceStatus.ISSUED), "gross")
    if not invoiced:
        return []
    received = per_contract(Receipt.objects.filter(contract_id__in=invoiced,
                                                   received_on__lte=as_of), "amount")
    refunded = per_contract(Refund.objects.filter(contract_id__in=invoiced,
                                                  refunded_on__lte=as_of), "amount")
    recognised = per_contract(Movement.objects.filter(contract_id__in=invoiced, on__lte=as_of),
                              F("revenue") + F("output_vat"))
    by_pk = {c.pk: c for c in Contract.objects.filter(pk__in=invoiced)
             .select_related("customer", "owner")}
    out = []
    for pk, amount in invoiced.items():
        collected = received.get(pk, ZERO) - refunded.get(pk, ZERO)
        if amount > collected:
            out.append({"contract": by_pk[pk], "invoiced": amount, "collected": collected,
                        "recognised": recognised.get(pk) or ZERO,
                        "outstanding": amount - collected})
    out.sort(key=lambda r: -r["outstanding"])
    return out


# --- marketing return --------------------------------------------------------------------------
@dataclass
class ChannelReturn:
    channel: str
    spend: Decimal = ZERO
    cash: Decimal = ZERO
    revenue: Decimal = ZERO
    margin: Decimal = ZERO
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cash_return(self) -> Decimal | None:
        return (self.cash / self.spend).quantize(Decimal("0.01")) if self.spend else None

    @property
    def accrual_return(self) -> Decimal | None:
        return (self.revenue / self.spend).quantize(Decimal("0.01")) if self.spend else None


def marketing_return(user: Any, start: dt.date, end: dt.date,
                     where: Slice | None = None) -> list[ChannelReturn]:
    """Per channel: what was spent, the cash it brought (collected) and the revenue (recognised,
    VAT excluded) and margin, in the period."""
    check_range(start, end)
    out: dict[str, ChannelReturn] = {}
    rows = (movements(user, where).filter(on__gte=start, on__lte=end).values("channel")
            .annotate(cash=fen_sum("bank"), revenue=fen_sum("revenue"), cost=fen_sum("cost")))
    for r in rows:
        _yuan(r, "cash", "revenue", "cost")
        name = r["channel"] or ""
        out[name] = ChannelReturn(name, cash=r["cash"], revenue=r["revenue"],
                                  margin=r["revenue"] - r["cost"])
    spend = scoped(MarketingSpend.objects.all(), user).filter(spent_on__gte=start,
                                                              spent_on__lte=end)
    if where is not None and where.channel:
        spend = spend.filter(channel=where.channel)
    if where is not None and where.department is not None:
        spend = spend.filter(tree.subtree_q("department__path", where.department.path))
    for r in spend.values("channel").annotate(s=fen_sum("amount")):
        out.setdefault(r["channel"], ChannelReturn(r["channel"])).spend = from_fen(r["s"])
    return sorted(out.values(), key=lambda c: (-c.spend, -c.cash))
