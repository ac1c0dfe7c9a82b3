"""Reads of quotes, contracts and collections, always through the caller's data scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from weiying.core.errors import NotFound
from weiying.core.money import MONEY_FIELD, ZERO, money
from weiying.core.scope import scoped
from weiying.pipeline.choices import ContractStatus
from weiying.pipeline.models import Contract, ContractLine, Instalment, Quote, Receipt
from weiying.pipeline.services.contracts import SOLD_STATUSES

_MONEY = DecimalField(**MONEY_FIELD)


def contracts_for(
    user: Any, *, status: str = "", owner: int | None = None, customer: int | None = None,
    search: str = "",
) -> QuerySet[Contract]:
    qs = scoped(Contract.objects.select_related("customer", "owner"), user)
    if status:
        qs = qs.filter(status=status)
    if owner:
        qs = qs.filter(owner_id=owner)
    if customer:
        qs = qs.filter(customer_id=customer)
    if search:
        qs = qs.filter(Q(number__icontains=search) | Q(title__icontains=search))
    return qs


def contract_detail(user: Any, pk: int) -> Contract:
    """One contract with lines, instalments and receipts; NotFound outside the scope."""
    contract = (
        scoped(Contract.objects.filter(pk=pk), user)
        .select_related("customer", "owner", "department", "approved_by", "quote",
                        "opportunity")
        .prefetch_related(
            Prefetch("lines", ContractLine.objects.select_related("product").order_by("pk")),
            Prefetch("instalments", Instalment.objects.order_by("due_on", "seq")),
            Prefetch("receipts", Receipt.objects.select_related("recorded_by")
                     .order_by("received_on", "pk")),
        )
        .first()
    )
    if contract is None:
        raise NotFound()
    return contract


def due_collections(user: Any, owner: Any, *, until: dt.date) -> QuerySet[Instalment]:
    """The owner's instalments due by `until` and not collected in full, late ones first; the
    rows the overdue card counts (live contracts), read through the user's scope."""
    return (scoped(Instalment.objects.all(), user)
            .filter(contract__owner=owner, due_on__lte=until, collected__lt=F("amount"))
            .exclude(contract__status=ContractStatus.CANCELLED)
            .select_related("contract__customer")
            .order_by("due_on", "pk"))


def quotes_for(user: Any, *, status: str = "", customer: int | None = None) -> QuerySet[Quote]:
    qs = scoped(Quote.objects.select_related("customer", "owner"), user)
    if status:
        qs = qs.filter(status=status)
    if customer:
        qs = qs.filter(customer_id=customer)
    return qs


def quote_detail(user: Any, pk: int) -> Quote:
    quote = (
        scoped(Quote.objects.filter(pk=pk), user)
        .select_related("customer", "owner", "opportunity")
        .prefetch_related(
            Prefetch("lines", ContractLine.objects.select_related("product").order_by("pk")),
            "contracts",
        )
        .first()
    )
    if quote is None:
        raise NotFound()
    return quote


# --- Collections overview -------------------------------------------------------------------
def receivable_contracts(
    user: Any, *, today: dt.date | None = None, overdue_only: bool = False,
    owner: int | None = None, customer: int | None = None,
) -> QuerySet[Contract]:
    """Signed, in-delivery and completed contracts in scope, each annotated with:
    `due` (instalments due on or before today), `overdue` (due − collected when positive),
    `outstanding` (total − collected) and `next_due_on` (the earliest instalment after today
    that is not fully collected). Receipts count against the oldest instalments first."""
    today = today or timezone.localdate()
    due = (
        Instalment.objects.filter(contract=OuterRef("pk"), due_on__lte=today)
        .order_by().values("contract").annotate(s=Sum("amount")).values("s")[:1]
    )
    next_due = (
        Instalment.objects.filter(contract=OuterRef("pk"), due_on__gt=today,
                                  collected__lt=F("amount"))
        .order_by("due_on").values("due_on")[:1]
    )
    qs = scoped(
        Contract.objects.filter(status__in=SOLD_STATUSES).select_related("customer", "owner"),
        user,
    ).annotate(
        due=Coalesce(Subquery(due, output_field=_MONEY), Value(ZERO), output_field=_MONEY),
        next_due_on=Subquery(next_due),
        outstanding_amount=F("total") - F("collected"),
    ).annotate(
        overdue=Case(
            When(due__gt=F("collected"), then=F("due") - F("collected")),
            default=Value(ZERO), output_field=_MONEY,
        )
    )
    if owner:
        qs = qs.filter(owner_id=owner)
    if customer:
        qs = qs.filter(customer_id=customer)
    if overdue_only:
        qs = qs.filter(overdue__gt=0)
    return qs


def receivable_summary(contracts: QuerySet[Contract]) -> dict[str, Any]:
    """The sums over `receivable_contracts(...)`: one query."""
    # Grouped on a constant rather than .aggregate(): Django 5.2's aggregate() prunes the
    # subquery annotations (due, overdue) from its inner query and sums nothing.
    grouped = (
        contracts.order_by().annotate(one=Value(1)).values("one")
        .annotate(total_=Sum("total"), collected_=Sum("collected"), due_=Sum("due"),
                  overdue_=Sum("overdue"), count_=Count("id"))
    )
    row = next(iter(grouped[:1]), {})
    out: dict[str, Any] = {
        k: money(row.get(f"{k}_") or ZERO) for k in ("total", "collected", "due", "overdue")
    }
    out["count"] = row.get("count_", 0)
    out["outstanding"] = out["total"] - out["collected"]
    return out


def receivable_customers(
    user: Any, *, today: dt.date | None = None, overdue_only: bool = False,
    owner: int | None = None, limit: int = 200,
) -> list[dict[str, Any]]:
    """Per customer, the sums of its contracts in scope (so a rep sees only their own
    contracts' share), most overdue first.

    Limitation: the list stops at `limit` customers (the most overdue) and is not paged; the
    contract list below it is."""
    qs = receivable_contracts(user, today=today, owner=owner)
    rows = (
        qs.order_by().values("customer_id", "customer__name")
        .annotate(
            sum_total=Sum("total"), sum_collected=Sum("collected"),
            sum_due=Sum("due"), sum_overdue=Sum("overdue"), next_due=Min("next_due_on"),
            contracts=Count("id"),
        )
        .order_by("-sum_overdue", "customer_id")
    )
    if overdue_only:
        rows = rows.filter(sum_overdue__gt=0)
    return [
        {
            "customer_id": r["customer_id"], "customer": r["customer__name"],
            "total": money(r["sum_total"]), "collected": money(r["sum_collected"]),
            "due": money(r["sum_due"] or ZERO), "overdue": money(r["sum_overdue"] or ZERO),
            "outstanding": money(r["sum_total"] - r["sum_collected"]),
            "next_due_on": r["next_due"], "contracts": r["contracts"],
        }
        for r in rows[:limit]
    ]
