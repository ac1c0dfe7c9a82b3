"""The desktop overview: this month's figures for everything in the user's scope.

Each figure is one aggregate query over a scoped queryset (no per-row Python)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.models import (
    Contract,
    FollowUp,
    Instalment,
    Lead,
    Opportunity,
    Receipt,
    Ticket,
)

ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=18, decimal_places=2))


def _month_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, 1, tzinfo=timezone.get_current_timezone())


def overview(user: Any) -> dict[str, Any]:
    today = timezone.localdate()
    now = timezone.now()
    month_start = _month_start(today)
    year_ago = _month_start((today.replace(day=1) - dt.timedelta(days=330)).replace(day=1))

    leads = scoped(Lead.objects.all(), user)
    opportunities = scoped(Opportunity.objects.filter(status="open"), user)
    contracts = scoped(Contract.objects.all(), user)
    receipts = scoped(Receipt.objects.all(), user)

    pipeline = opportunities.aggregate(
        count=Count("id"),
        value=Coalesce(Sum("amount"), ZERO),
        weighted=Coalesce(Sum(F("amount") * F("stage__probability") / 100), ZERO),
    )
    signed = contracts.filter(signed_on__gte=month_start.date()).aggregate(
        count=Count("id"), value=Coalesce(Sum("total"), ZERO)
    )
    collected = receipts.filter(received_on__gte=month_start.date()).aggregate(
        value=Coalesce(Sum("amount"), ZERO)
    )["value"]
    overdue = scoped(
        Instalment.objects.filter(due_on__lt=today, collected__lt=F("amount"))
        .exclude(contract__status="cancelled"),
        user,
    ).aggregate(value=Coalesce(Sum(F("amount") - F("collected")), ZERO))["value"]
    due_followups = scoped(
        FollowUp.objects.filter(next_at__lte=now + dt.timedelta(days=1), next_done=False), user
    ).count()
    lead_stats = leads.filter(created_at__gte=month_start).aggregate(
        new=Count("id"),
        unanswered=Count("id", filter=Q(first_response_at__isnull=True,
                                        status__in=["new", "assigned"])),
    )
    tickets = scoped(Ticket.objects.exclude(status__in=["resolved", "closed"]), user).aggregate(
        open=Count("id"), breached=Count("id", filter=Q(resolve_by__lt=now))
    )
    by_month = (
        leads.filter(created_at__gte=year_ago)
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(n=Count("id"))
        .order_by("month")
    )
    signed_by_month = (
        contracts.filter(signed_on__gte=year_ago.date())
        .annotate(month=TruncMonth("signed_on"))
        .values("month")
        .annotate(total=Sum("total"))
        .order_by("month")
    )
    months = sorted({r["month"].strftime("%Y-%m") for r in by_month}
                    | {r["month"].strftime("%Y-%m") for r in signed_by_month})
    leads_map = {r["month"].strftime("%Y-%m"): r["n"] for r in by_month}
    signed_map = {r["month"].strftime("%Y-%m"): str(r["total"]) for r in signed_by_month}
    chart = {
        "months": months,
        "leads": [leads_map.get(m, 0) for m in months],
        "signed": [signed_map.get(m, "0") for m in months],
    }
    return {
        "pipeline": pipeline,
        "signed": signed,
        "collected": collected,
        "overdue": overdue,
        "due_followups": due_followups,
        "lead_stats": lead_stats,
        "tickets": tickets,
        "pool_size": scoped(Customer.objects.filter(in_pool=True), user).count(),
        "chart_json": json.dumps(chart),
    }
