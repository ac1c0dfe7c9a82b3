"""Reads of follow-ups and of the follow-ups that are due, through the data scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from weiying.core.permissions import employee_of
from weiying.core.scope import scoped
from weiying.pipeline.models import FollowUp

SORTS = {
    "-at": ["-at", "-id"],
    "at": ["at", "id"],
    "next": ["next_at", "id"],
}


def followups_for(user: Any) -> QuerySet[FollowUp]:
    return scoped(FollowUp.objects.all(), user).select_related(
        "customer", "lead", "opportunity", "owner"
    )


def filter_followups(
    qs: QuerySet[FollowUp], *, kind: str = "", owner: Any = None, since: dt.date | None = None,
    until: dt.date | None = None, customer: Any = None, lead: Any = None,
    opportunity: Any = None, due: bool = False, now: dt.datetime | None = None,
) -> QuerySet[FollowUp]:
    """`since`/`until` are local dates, both included; `due` keeps open plans due by now."""
    if kind:
        qs = qs.filter(kind=kind)
    if owner:
        qs = qs.filter(owner_id=owner)
    if customer:
        qs = qs.filter(customer_id=customer)
    if lead:
        qs = qs.filter(lead_id=lead)
    if opportunity:
        qs = qs.filter(opportunity_id=opportunity)
    if since:
        qs = qs.filter(at__gte=_start_of(since))
    if until:
        qs = qs.filter(at__lt=_start_of(until + dt.timedelta(days=1)))
    if due:
        qs = qs.filter(next_done=False, next_at__isnull=False,
                       next_at__lte=now or timezone.now())
    return qs


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def due_followups(
    user: Any, *, until: dt.datetime, mine: bool = False,
) -> QuerySet[FollowUp]:
    """Planned follow-ups not yet done whose next time is at or before `until`, soonest
    (most overdue) first. `mine` keeps only the user's own plans (their day)."""
    qs = followups_for(user).filter(next_done=False, next_at__isnull=False, next_at__lte=until)
    if mine:
        me = employee_of(user)
        qs = qs.filter(owner=me) if me is not None else qs.none()
    return qs.order_by("next_at", "id")
