"""A customer's timeline: everything that happened with them, newest first, in one list.

Query cost: one query to confirm the customer is visible, then one capped query per kind of
record (follow-ups, stage changes, contracts, receipts, tickets, ownership changes, leads),
each through the data scope of its own model. Never one query per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core.money import format_cny
from weiying.core.scope import scoped
from weiying.customers.models import Customer, OwnershipChange
from weiying.pipeline.choices import ContractStatus, StageKind, TicketStatus
from weiying.pipeline.models import Contract, FollowUp, Lead, Receipt, StageChange, Ticket


@dataclass
class TimelineEntry:
    at: dt.datetime
    kind: str
    title: str
    body: str
    actor: str
    url: str


def _url(name: str, *args: Any) -> str:
    """A link when that page exists (areas are built independently), else no link."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _day(value: dt.date) -> dt.datetime:
    """A date as the start of that day in the local time zone (for ordering)."""
    return timezone.make_aware(dt.datetime.combine(value, dt.time.min))


def _name(employee: Any) -> str:
    return employee.name if employee is not None else ""


def customer_timeline(user: Any, customer: Customer, *, limit: int = 100) -> list[TimelineEntry]:
    if not scoped(Customer.objects.all(), user).filter(pk=customer.pk).exists():
        return []
    entries: list[TimelineEntry] = []
    entries += _followups(user, customer, limit)
    entries += _stage_changes(user, customer, limit)
    entries += _contracts(user, customer, limit)
    entries += _receipts(user, customer, limit)
    entries += _tickets(user, customer, limit)
    entries += _ownership(customer, limit)
    entries += _leads(user, customer, limit)
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def _followups(user: Any, customer: Customer, limit: int) -> list[TimelineEntry]:
    rows = (
        scoped(FollowUp.objects.filter(customer=customer), user)
        .select_related("owner", "opportunity").order_by("-at", "-id")[:limit]
    )
    out = []
    for f in rows:
        title = _("Follow-up: %(kind)s") % {"kind": f.get_kind_display()}
        if f.opportunity_id:
            title += " · " + f.opportunity.name
        body = f.note
        if f.next_at:
            body += "\n" + _("Next follow-up: %(when)s") % {
                "when": timezone.localtime(f.next_at).strftime("%Y-%m-%d %H:%M")
            }
        out.append(TimelineEntry(
            at=f.at, kind="followup", title=title, body=body, actor=_name(f.owner),
            url=_url("pipeline:opportunity_detail", f.opportunity_id) if f.opportunity_id
            else "",
        ))
    return out


def _stage_changes(user: Any, customer: Customer, limit: int) -> list[TimelineEntry]:
    from weiying.pipeline.models import Opportunity

    visible = scoped(Opportunity.objects.filter(customer=customer), user).values("pk")
    rows = (
        StageChange.objects.filter(opportunity__in=visible)
        .select_related("opportunity", "from_stage", "to_stage", "by")
        .order_by("-at", "-id")[:limit]
    )
    out = []
    for c in rows:
        opp = c.opportunity
        if c.from_stage is None:
            kind, title = "opportunity", _("Opportunity created: %(name)s") % {"name": opp.name}
        elif c.to_stage.kind == StageKind.WON:
            kind, title = "won", _("Opportunity won: %(name)s") % {"name": opp.name}
        elif c.to_stage.kind == StageKind.LOST:
            kind, title = "lost", _("Opportunity lost: %(name)s") % {"name": opp.name}
        else:
            kind = "stage"
            title = _("%(name)s: %(from)s → %(to)s") % {
                "name": opp.name, "from": c.from_stage.name, "to": c.to_stage.name,
            }
        body = c.to_stage.name if c.from_stage is None else ""
        if kind in ("won", "lost", "opportunity"):
            body = format_cny(opp.amount)
        out.append(TimelineEntry(at=c.at, kind=kind, title=title, body=body,
                                 actor=_name(c.by),
                                 url=_url("pipeline:opportunity_detail", opp.pk)))
    return out


def _contracts(user: Any, customer: Customer, limit: int) -> list[TimelineEntry]:
    rows = (
        scoped(Contract.objects.filter(customer=customer), user)
        .select_related("owner").order_by("-created_at", "-id")[:limit]
    )
    out = []
    for c in rows:
        url = _url("pipeline:contract_detail", c.pk)
        label = f"{c.number} {c.title}"
        out.append(TimelineEntry(
            at=c.created_at, kind="contract", title=_("Contract drafted: %(c)s") % {"c": label},
            body=format_cny(c.total), actor=_name(c.owner), url=url,
        ))
        if c.signed_on:
            out.append(TimelineEntry(
                at=_day(c.signed_on), kind="contract_signed",
                title=_("Contract signed: %(c)s") % {"c": label}, body=format_cny(c.total),
                actor=_name(c.owner), url=url,
            ))
        if c.status == ContractStatus.CANCELLED:
            # Limitation: a contract has no cancellation time of its own; its last update
            # stands in for it.
            out.append(TimelineEntry(
                at=c.updated_at, kind="contract_cancelled",
                title=_("Contract cancelled: %(c)s") % {"c": label}, body=c.cancel_reason,
                actor=_name(c.owner), url=url,
            ))
    return out


def _receipts(user: Any, customer: Customer, limit: int) -> list[TimelineEntry]:
    rows = (
        scoped(Receipt.objects.filter(contract__customer=customer), user)
        .select_related("contract", "recorded_by").order_by("-received_on", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=_day(r.received_on), kind="receipt",
            title=_("Payment received: %(amount)s") % {"amount": format_cny(r.amount)},
            body=f"{r.contract.number} · {r.get_method_display()}",
            actor=_name(r.recorded_by), url=_url("pipeline:contract_detail", r.contract_id),
        )
        for r in rows
    ]


def _tickets(user: Any, customer: Customer, limit: int) -> list[TimelineEntry]:
    rows = (
        scoped(Ticket.objects.filter(customer=customer), user)
        .select_related("owner").order_by("-opened_at", "-id")[:limit]
    )
    out = []
    for t in rows:
        url = _url("pipeline:ticket_detail", t.pk)
        label = f"{t.number} {t.title}"
        out.append(TimelineEntry(
            at=t.opened_at, kind="ticket", title=_("Ticket opened: %(t)s") % {"t": label},
            body=t.description, actor=_name(t.owner), url=url,
        ))
        if t.closed_at and t.status == TicketStatus.CLOSED:
            out.append(TimelineEntry(
                at=t.closed_at, kind="ticket_closed",
                title=_("Ticket closed: %(t)s") % {"t": label}, body=t.resolution,
                actor=_name(t.owner), url=url,
            ))
    return out


def _ownership(customer: Customer, limit: int) -> list[TimelineEntry]:
    # Ownership history belongs to the customer, whose visibility was checked by the caller.
    rows = (
        OwnershipChange.objects.filter(customer=customer)
        .select_related("from_owner", "to_owner", "by").order_by("-at", "-id")[:limit]
    )
    out = []
    for o in rows:
        parts = [p for p in (_name(o.from_owner), _name(o.to_owner)) if p]
        body = " → ".join(parts)
        if o.reason:
            body = f"{body} ({o.reason})" if body else o.reason
        out.append(TimelineEntry(
            at=o.at, kind="ownership",
            title=_("Owner change: %(action)s") % {"action": o.get_action_display()},
            body=body, actor=_name(o.by), url="",
        ))
    return out


def _leads(user: Any, customer: Customer, limit: int) -> list[TimelineEntry]:
    rows = (
        scoped(Lead.objects.filter(customer=customer), user)
        .select_related("owner").order_by("-created_at", "-id")[:limit]
    )
    out = []
    for lead in rows:
        url = _url("pipeline:lead_detail", lead.pk)
        out.append(TimelineEntry(
            at=lead.created_at, kind="lead",
            title=_("Lead captured: %(name)s") % {"name": str(lead)},
            body=lead.get_source_display(), actor="", url=url,
        ))
        if lead.converted_at:
            out.append(TimelineEntry(
                at=lead.converted_at, kind="lead_converted",
                title=_("Lead converted: %(name)s") % {"name": str(lead)}, body="",
                actor=_name(lead.owner), url=url,
            ))
    return out
