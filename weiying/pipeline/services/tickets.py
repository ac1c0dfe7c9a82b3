"""After-sale service tickets: opening, the status machine, reassignment and priority.

SLA deadlines come from the priority when a ticket is opened and are recomputed from
`opened_at` when the priority changes. The clock does not pause while a ticket waits for
the customer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core import audit, events
from weiying.core.errors import InvalidTransition, NotFound, ValidationFailed
from weiying.core.permissions import employee_of, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Employee
from weiying.pipeline.choices import TicketPriority, TicketStatus
from weiying.pipeline.models import Contract, Ticket

# Hours to first response and to resolution, per priority. A company overrides one with
# settings.WEIYING["SLA_URGENT_RESPOND_HOURS"], ["SLA_LOW_RESOLVE_HOURS"], …
SLA_HOURS: dict[str, tuple[int, int]] = {
    TicketPriority.URGENT: (1, 8),
    TicketPriority.HIGH: (4, 24),
    TicketPriority.NORMAL: (8, 72),
    TicketPriority.LOW: (24, 168),
}

ACTIVE = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING)
NUMBER_PREFIX = "GD"
_AUDITED = ["status", "priority", "owner", "department", "respond_by", "resolve_by",
            "responded_at", "resolved_at", "closed_at", "resolution"]

_CLOSED = gettext_lazy("This ticket is closed and cannot change; open a new ticket instead.")

# What each action says when the ticket is in a state it cannot leave that way.
_REFUSALS: dict[tuple[str, str], Any] = {
    ("start", TicketStatus.IN_PROGRESS): gettext_lazy("This ticket is already in progress."),
    ("start", TicketStatus.RESOLVED): gettext_lazy(
        "This ticket is resolved; reopen it with a reason to work on it again."),
    ("wait", TicketStatus.OPEN): gettext_lazy(
        "This ticket is open; start it before waiting for the customer."),
    ("wait", TicketStatus.WAITING): gettext_lazy(
        "This ticket is already waiting for the customer."),
    ("wait", TicketStatus.RESOLVED): gettext_lazy(
        "This ticket is resolved; reopen it with a reason to work on it again."),
    ("resolve", TicketStatus.OPEN): gettext_lazy(
        "This ticket is open; start it before resolving it."),
    ("resolve", TicketStatus.RESOLVED): gettext_lazy(
        "This ticket is already resolved; close it, or reopen it with a reason."),
    ("close", TicketStatus.OPEN): gettext_lazy(
        "This ticket is open; resolve it before closing it."),
    ("close", TicketStatus.IN_PROGRESS): gettext_lazy(
        "This ticket is in progress; resolve it before closing it."),
    ("close", TicketStatus.WAITING): gettext_lazy(
        "This ticket is waiting for the customer; resolve it before closing it."),
    ("reopen", TicketStatus.OPEN): gettext_lazy(
        "This ticket is open, not resolved; only a resolved ticket can be reopened."),
    ("reopen", TicketStatus.IN_PROGRESS): gettext_lazy(
        "This ticket is in progress, not resolved; only a resolved ticket can be reopened."),
    ("reopen", TicketStatus.WAITING): gettext_lazy(
        "This ticket is waiting for the customer, not resolved; only a resolved ticket can "
        "be reopened."),
}

# The status machine: action → (states it may start from, state it leads to).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": ((TicketStatus.OPEN, TicketStatus.WAITING), TicketStatus.IN_PROGRESS),
    "wait": ((TicketStatus.IN_PROGRESS,), TicketStatus.WAITING),
    "resolve": ((TicketStatus.IN_PROGRESS, TicketStatus.WAITING), TicketStatus.RESOLVED),
    "close": ((TicketStatus.RESOLVED,), TicketStatus.CLOSED),
    "reopen": ((TicketStatus.RESOLVED,), TicketStatus.IN_PROGRESS),
}


# --- SLA ------------------------------------------------------------------------------------
def sla_hours(priority: str) -> tuple[int, int]:
    """(respond hours, resolve hours) for a priority, with the company's overrides."""
    if priority not in SLA_HOURS:
        raise ValidationFailed(
            _("Unknown priority %(priority)s; use one of low, normal, high, urgent.")
            % {"priority": priority},
            field="priority",
        )
    respond, resolve = SLA_HOURS[priority]
    overrides = getattr(settings, "WEIYING", {}) or {}
    key = f"SLA_{str(priority).upper()}"
    return (
        int(overrides.get(f"{key}_RESPOND_HOURS", respond)),
        int(overrides.get(f"{key}_RESOLVE_HOURS", resolve)),
    )


def sla_deadlines(priority: str, opened_at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    respond, resolve = sla_hours(priority)
    return opened_at + dt.timedelta(hours=respond), opened_at + dt.timedelta(hours=resolve)


def allowed_actions(ticket: Ticket) -> list[str]:
    """The status actions the ticket's current state allows (for buttons and the API)."""
    return [name for name, (sources, _target) in TRANSITIONS.items()
            if ticket.status in sources]


# --- Helpers --------------------------------------------------------------------------------
def _locked(actor: Any, ticket: Ticket) -> Ticket:
    """The ticket re-read under a row lock, if the actor may see it (else NotFound)."""
    locking = Ticket.objects.select_for_update(of=("self",))
    fresh = scoped(locking, actor).filter(pk=ticket.pk).first()
    if fresh is None:
        raise NotFound()
    return fresh


def _check_transition(ticket: Ticket, action: str) -> str:
    sources, target = TRANSITIONS[action]
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidTransition(_CLOSED)
    if ticket.status not in sources:
        raise InvalidTransition(_REFUSALS[(action, ticket.status)])
    return target


def _assignable(actor: Any, owner: Employee) -> Employee:
    if owner.status == EmployeeStatus.LEFT:
        raise ValidationFailed(
            _("%(name)s has left the company; choose someone still on the roster.")
            % {"name": owner.name},
            field="owner",
        )
    if not visible_employees(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You can only assign tickets to people in your own scope."), field="owner"
        )
    return owner


def _next_number(now: dt.datetime) -> str:
    prefix = f"{NUMBER_PREFIX}{timezone.localtime(now):%Y%m}"
    last = (
        Ticket.objects.filter(number__startswith=prefix)
        .order_by("-number").values_list("number", flat=True).first()
    )
    seq = int(last[len(prefix):]) + 1 if last else 1
    return f"{prefix}{seq:06d}"


def _transition(
    ticket: Ticket, action: str, **changes: Any
) -> tuple[Ticket, dict[str, Any] | None]:
    """Move the ticket (already locked) and save; returns it with its state before."""
    before = audit.snapshot(ticket, _AUDITED)
    ticket.status = _check_transition(ticket, action)
    for field, value in changes.items():
        setattr(ticket, field, value)
    ticket.save(update_fields=["status", *changes])
    return ticket, before


# --- Services -------------------------------------------------------------------------------
@transaction.atomic
def open_ticket(
    *, actor: Any, customer: Customer, title: str, description: str = "",
    priority: str = TicketPriority.NORMAL, contract: Contract | None = None,
    owner: Employee | None = None,
) -> Ticket:
    """Open a ticket for a customer the actor may see; the SLA clock starts now."""
    require(actor, "ticket.edit")
    if not scoped(Customer.objects.filter(pk=customer.pk), actor).exists():
        raise NotFound(_("This customer does not exist or is outside what you may see."))
    title = (title or "").strip()
    if not title:
        raise ValidationFailed(_("A ticket needs a title: say what the customer needs."),
                               field="title")
    if len(title) > 128:
        raise ValidationFailed(_("Keep the title within 128 characters."), field="title")
    if contract is not None and contract.customer_id != customer.pk:
        raise ValidationFailed(
            _("This contract belongs to another customer; pick one of this customer's."),
            field="contract",
        )
    if owner is not None:
        owner = _assignable(actor, owner)
    else:
        owner = customer.owner or employee_of(actor)

    now = timezone.now()
    respond_by, resolve_by = sla_deadlines(priority, now)
    ticket = Ticket(
        customer=customer, contract=contract, title=title,
        description=(description or "").strip(), priority=priority,
        status=TicketStatus.OPEN, owner=owner,
        department=owner.department if owner is not None else customer.department,
        opened_at=now, respond_by=respond_by, resolve_by=resolve_by,
    )
    # Two tickets opened in the same instant may pick the same number; the unique index
    # refuses the second, which then takes the next one.
    for _attempt in range(5):
        ticket.number = _next_number(now)
        try:
            with transaction.atomic():
                ticket.save()
            break
        except IntegrityError:
            if Ticket.objects.filter(number=ticket.number).exists():
                ticket.pk = None
                continue
            raise
    else:
        raise IntegrityError("could not allocate a ticket number")

    audit.record(actor, "ticket.open", ticket, after=audit.snapshot(ticket))
    events.emit("ticket.opened", ticket, actor=actor, number=ticket.number,
                customer_id=customer.pk, priority=priority,
                owner_id=owner.pk if owner is not None else None)
    return ticket


@transaction.atomic
def start_ticket(*, actor: Any, ticket: Ticket) -> Ticket:
    """Work on the ticket (from open, or back from waiting); the first start is the response."""
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    changes: dict[str, Any] = {}
    if ticket.responded_at is None:
        changes["responded_at"] = timezone.now()
    ticket, before = _transition(ticket, "start", **changes)
    audit.record(actor, "ticket.start", ticket, before=before,
                 after=audit.snapshot(ticket, _AUDITED))
    return ticket


@transaction.atomic
def wait_for_customer(*, actor: Any, ticket: Ticket) -> Ticket:
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    ticket, before = _transition(ticket, "wait")
    audit.record(actor, "ticket.wait", ticket, before=before,
                 after=audit.snapshot(ticket, _AUDITED))
    return ticket


@transaction.atomic
def resolve_ticket(*, actor: Any, ticket: Ticket, resolution: str) -> Ticket:
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    resolution = (resolution or "").strip()
    _check_transition(ticket, "resolve")
    if not resolution:
        raise ValidationFailed(
            _("Say how the ticket was resolved before resolving it."), field="resolution"
        )
    ticket, before = _transition(ticket, "resolve", resolution=resolution,
                                 resolved_at=timezone.now())
    audit.record(actor, "ticket.resolve", ticket, before=before,
                 after=audit.snapshot(ticket, _AUDITED))
    return ticket


@transaction.atomic
def close_ticket(*, actor: Any, ticket: Ticket) -> Ticket:
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    ticket, before = _transition(ticket, "close", closed_at=timezone.now())
    audit.record(actor, "ticket.close", ticket, before=before,
                 after=audit.snapshot(ticket, _AUDITED))
    events.emit("ticket.closed", ticket, actor=actor, number=ticket.number,
                customer_id=ticket.customer_id,
                breached=bool(ticket.resolved_at and ticket.resolved_at > ticket.resolve_by))
    return ticket


@transaction.atomic
def reopen_ticket(*, actor: Any, ticket: Ticket, reason: str) -> Ticket:
    """Back to work on a resolved ticket; the resolution is cleared (the audit keeps it)."""
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    reason = (reason or "").strip()
    _check_transition(ticket, "reopen")
    if not reason:
        raise ValidationFailed(_("Say why the ticket is reopened."), field="reason")
    ticket, before = _transition(ticket, "reopen", resolution="", resolved_at=None,
                                 resolve_breach_at=None)
    after = audit.snapshot(ticket, _AUDITED) or {}
    audit.record(actor, "ticket.reopen", ticket, before=before, after={**after, "reason": reason})
    return ticket


@transaction.atomic
def reassign_ticket(*, actor: Any, ticket: Ticket, owner: Employee) -> Ticket:
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidTransition(_CLOSED)
    owner = _assignable(actor, owner)
    if owner.pk == ticket.owner_id:
        return ticket
    before = audit.snapshot(ticket, _AUDITED)
    ticket.owner = owner
    ticket.department = owner.department
    ticket.save(update_fields=["owner", "department"])
    audit.record(actor, "ticket.reassign", ticket, before=before,
                 after=audit.snapshot(ticket, _AUDITED))
    return ticket


@transaction.atomic
def change_priority(*, actor: Any, ticket: Ticket, priority: str) -> Ticket:
    """New priority, and SLA deadlines recomputed from when the ticket was opened."""
    require(actor, "ticket.edit")
    ticket = _locked(actor, ticket)
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidTransition(_CLOSED)
    respond_by, resolve_by = sla_deadlines(priority, ticket.opened_at)
    if priority == ticket.priority:
        return ticket
    before = audit.snapshot(ticket, _AUDITED)
    ticket.priority = priority
    ticket.respond_by, ticket.resolve_by = respond_by, resolve_by
    # New deadlines: a breach of them is news again.
    ticket.respond_breach_at = ticket.resolve_breach_at = None
    ticket.save(update_fields=["priority", "respond_by", "resolve_by", "respond_breach_at",
                               "resolve_breach_at"])
    audit.record(actor, "ticket.priority", ticket, before=before,
                 after=audit.snapshot(ticket, _AUDITED))
    return ticket
