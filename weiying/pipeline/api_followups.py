"""HTTP API for follow-ups, mounted at /api/followups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.customers.models import Customer
from weiying.pipeline.models import FollowUp, Lead, Opportunity
from weiying.pipeline.selectors import followups as selectors
from weiying.pipeline.services import followups as services

router = Router(tags=["follow-ups"])


class FollowUpOut(Schema):
    id: int
    kind: str
    note: str
    at: dt.datetime
    next_at: dt.datetime | None
    next_done: bool
    reminded_at: dt.datetime | None
    customer_id: int | None
    customer_name: str
    lead_id: int | None
    lead_name: str
    opportunity_id: int | None
    owner_id: int
    owner_name: str


class FollowUpPage(Schema):
    items: list[FollowUpOut]
    next_cursor: str | None


class FollowUpIn(Schema):
    kind: str
    note: str
    at: dt.datetime | None = None
    next_at: dt.datetime | None = None
    customer_id: int | None = None
    lead_id: int | None = None
    opportunity_id: int | None = None


class ListFilters(Schema):
    kind: str = ""
    owner: int | None = None
    customer: int | None = None
    lead: int | None = None
    opportunity: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    due: bool = False
    sort: str = "-at"
    cursor: str | None = None
    size: int = PAGE_SIZE


class DueFilters(Schema):
    within_hours: int = 0
    mine: bool = True
    cursor: str | None = None
    size: int = PAGE_SIZE


def _out(f: FollowUp) -> dict[str, Any]:
    return {
        "id": f.pk, "kind": f.kind, "note": f.note, "at": f.at, "next_at": f.next_at,
        "next_done": f.next_done, "reminded_at": f.reminded_at,
        "customer_id": f.customer_id, "customer_name": f.customer.name if f.customer else "",
        "lead_id": f.lead_id, "lead_name": str(f.lead) if f.lead else "",
        "opportunity_id": f.opportunity_id, "owner_id": f.owner_id, "owner_name": f.owner.name,
    }


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time sent without an offset is read as Beijing time (the installation's zone)."""
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


@router.get("", response=FollowUpPage, summary="List follow-ups in your scope")
def list_followups(request: HttpRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    if filters.sort not in selectors.SORTS:
        raise ValidationFailed(
            _("Sort by one of: %(keys)s.") % {"keys": ", ".join(selectors.SORTS)}, field="sort"
        )
    qs = selectors.filter_followups(
        selectors.followups_for(request.user), kind=filters.kind, owner=filters.owner,
        customer=filters.customer, lead=filters.lead, opportunity=filters.opportunity,
        since=filters.since, until=filters.until, due=filters.due,
    )
    page = keyset_page(qs, selectors.SORTS[filters.sort], cursor=filters.cursor,
                       size=filters.size)
    return {"items": [_out(f) for f in page.items], "next_cursor": page.next_cursor}


@router.get("/due", response=FollowUpPage,
            summary="Planned follow-ups due now (or within the next hours), most overdue first")
def due(request: HttpRequest, filters: Query[DueFilters]) -> dict[str, Any]:
    if not 0 <= filters.within_hours <= 24 * 31:
        raise ValidationFailed(_("within_hours must be from 0 to 744."), field="within_hours")
    until = timezone.now() + dt.timedelta(hours=filters.within_hours)
    qs = selectors.due_followups(request.user, until=until, mine=filters.mine)
    page = keyset_page(qs, ["next_at", "id"], cursor=filters.cursor, size=filters.size)
    return {"items": [_out(f) for f in page.items], "next_cursor": page.next_cursor}


@router.post("", response={201: FollowUpOut}, summary="Log a follow-up")
def create(request: HttpRequest, payload: FollowUpIn) -> Status:
    customer = lead = opportunity = None
    if payload.customer_id is not None:
        customer = Customer.objects.filter(pk=payload.customer_id).first()
        if customer is None:
            raise NotFound(_("That customer does not exist or is outside what you may see."))
    if payload.lead_id is not None:
        lead = Lead.objects.filter(pk=payload.lead_id).first()
        if lead is None:
            raise NotFound(_("That lead does not exist or is outside what you may see."))
    if payload.opportunity_id is not None:
        opportunity = Opportunity.objects.filter(pk=payload.opportunity_id).first()
        if opportunity is None:
            raise NotFound(_("That opportunity does not exist or is outside what you may see."))
    followup = services.log_followup(
        actor=request.user, kind=payload.kind, note=payload.note, at=_aware(payload.at),
        customer=customer, lead=lead, opportunity=opportunity, next_at=_aware(payload.next_at),
    )
    row = selectors.followups_for(request.user).get(pk=followup.pk)
    return Status(201, _out(row))
