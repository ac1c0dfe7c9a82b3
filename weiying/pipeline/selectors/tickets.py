"""Reads of service tickets: scoped lists with SLA filters, one ticket, its history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext as _

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.models import AuditLog
from weiying.core.scope import scoped
from weiying.pipeline.choices import TicketPriority, TicketStatus
from weiying.pipeline.models import Ticket

DUE_SOON = dt.timedelta(hours=2)
SLA_FILTERS = ("breached", "due_soon")

# Public sort keys of ticket lists → keyset ordering (the last field is unique).
TICKET_SORTS: dict[str, list[str]] = {
    "-opened": ["-opened_at", "-id"],
    "opened": ["opened_at", "id"],
    "resolve_by": ["resolve_by", "id"],
    "respond_by": ["respond_by", "id"],
}
DEFAULT_SORT = "-opened"


def _deadline_state(deadline: dt.datetime, done_at: dt.datetime | None,
                    now: dt.datetime) -> tuple[str, int]:
    if done_at is not None:
        state = "met" if done_at <= deadline else "breached"
        return state, int((deadline - done_at).total_seconds())
    left = int((deadline - now).total_seconds())
    return ("due" if now <= deadline else "breached"), left


def sla_state(ticket: Ticket, now: dt.datetime) -> dict[str, Any]:
    """Where the ticket stands against its deadlines.

    "met": done in time; "breached": done late, or not done and past the deadline; "due":
    not done yet and still in time. `*_left_seconds` is the deadline minus the moment the
    step was done (or now): negative once breached.
    """
    respond, respond_left = _deadline_state(ticket.respond_by, ticket.responded_at, now)
    resolve, resolve_left = _deadline_state(ticket.resolve_by, ticket.resolved_at, now)
    return {
        "respond": respond, "resolve": resolve,
        "respond_left_seconds": respond_left, "resolve_left_seconds": resolve_left,
    }


def breached_q(now: dt.datetime) -> Q:
    """Tickets whose sla_state says "breached" for either deadline, as one SQL filter."""
    return (
        Q(responded_at__isnull=True, respond_by__lt=now)
        | Q(responded_at__gt=F("respond_by"))
        | Q(resolved_at__isnull=True, resolve_by__lt=now)
        | Q(resolved_at__gt=F("resolve_by"))
    )


def due_soon_q(now: dt.datetime, within: dt.timedelta = DUE_SOON) -> Q:
    """Tickets with a step not done whose deadline falls in [now, now + within]."""
    soon = now + within
    return (
        Q(responded_at__isnull=True, respond_by__gte=now, respond_by__lte=soon)
        | Q(resolved_at__isnull=True, resolve_by__gte=now, resolve_by__lte=soon)
    )


def active_breached_q(now: dt.datetime) -> Q:
    """Tickets still being worked whose deadline has passed without the step being done."""
    return Q(status__in=[TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING]) & (
        Q(responded_at__isnull=True, respond_by__lt=now)
        | Q(resolved_at__isnull=True, resolve_by__lt=now)
    )


def tickets_for(user: Any) -> QuerySet[Ticket]:
    return scoped(Ticket.objects.select_related("customer", "owner", "contract"), user)


def filter_tickets(
    user: Any, *, now: dt.datetime, status: str = "", priority: str = "", sla: str = "",
    owner_id: int | None = None, customer_id: int | None = None, q: str = "",
) -> QuerySet[Ticket]:
    """The user's tickets narrowed by the list filters; an unknown value is refused."""
    qs = tickets_for(user)
    if status:
        if status not in TicketStatus.values:
            raise ValidationFailed(_unknown("status", status), field="status")
        qs = qs.filter(status=status)
    if priority:
        if priority not in TicketPriority.values:
            raise ValidationFailed(_unknown("priority", priority), field="priority")
        qs = qs.filter(priority=priority)
    if sla:
        if sla not in SLA_FILTERS:
            raise ValidationFailed(_unknown("sla", sla), field="sla")
        qs = qs.filter(breached_q(now) if sla == "breached" else due_soon_q(now))
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(number__icontains=q) | Q(title__icontains=q)
                       | Q(customer__name__icontains=q))
    return qs


def _unknown(field: str, value: str) -> str:
    return _("%(value)s is not a valid %(field)s filter; pick one from the list.") % {
        "value": value, "field": field,
    }


def get_ticket(user: Any, pk: int) -> Ticket:
    ticket = tickets_for(user).filter(pk=pk).first()
    if ticket is None:
        raise NotFound(_("This ticket does not exist or is outside what you may see."))
    return ticket


def ticket_history(ticket: Ticket) -> QuerySet[AuditLog]:
    """The ticket's audit rows, oldest first: who opened it and every move since."""
    return (
        AuditLog.objects.filter(object_type=Ticket._meta.label_lower, object_id=str(ticket.pk))
        .select_related("actor", "actor__employee")
        .order_by("at", "pk")
    )
