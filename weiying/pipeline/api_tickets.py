"""Service tickets API (/api/tickets) and the after-sale lists (/api/tickets/aftersale/…)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.pagination import keyset_page
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.pipeline.models import Contract, Ticket
from weiying.pipeline.selectors import aftersale
from weiying.pipeline.selectors import tickets as selectors
from weiying.pipeline.services import tickets as services

router = Router(tags=["tickets"])


# --- Schemas --------------------------------------------------------------------------------
class SlaOut(Schema):
    respond: str
    resolve: str
    respond_left_seconds: int
    resolve_left_seconds: int


class TicketOut(Schema):
    id: int
    number: str
    customer_id: int
    customer_name: str
    contract_id: int | None
    title: str
    description: str
    priority: str
    status: str
    owner_id: int | None
    owner_name: str | None
    opened_at: dt.datetime
    respond_by: dt.datetime
    resolve_by: dt.datetime
    responded_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    resolution: str
    sla: SlaOut
    allowed_actions: list[str]


class TicketPage(Schema):
    items: list[TicketOut]
    next_cursor: str | None


class TicketIn(Schema):
    customer_id: int
    title: str = Field(min_length=1, max_length=128)
    description: str = ""
    priority: str = "normal"
    contract_id: int | None = None
    owner_id: int | None = None


class ResolveIn(Schema):
    resolution: str = Field(min_length=1)


class ReopenIn(Schema):
    reason: str = Field(min_length=1, max_length=255)


class ReassignIn(Schema):
    owner_id: int


class PriorityIn(Schema):
    priority: str


class RepurchaseOut(Schema):
    customer_id: int
    customer_name: str
    owner_name: str | None
    product_id: int
    product_name: str
    last_purchase: dt.date
    due_on: dt.date
    days_overdue: int


class RepurchasePage(Schema):
    items: list[RepurchaseOut]
    next_cursor: str | None


class SuggestionOut(Schema):
    product_id: int
    code: str
    name: str
    category: str


class UpsellOut(Schema):
    customer_id: int
    customer_name: str
    owner_name: str | None
    total_collected: Decimal
    suggestions: list[SuggestionOut]


class UpsellPage(Schema):
    items: list[UpsellOut]
    next_cursor: str | None


class ValueOut(Schema):
    customer_id: int
    customer_name: str
    owner_name: str | None
    total_signed: Decimal
    total_collected: Decimal
    outstanding: Decimal
    last_purchase: dt.date | None
    contracts: int
    open_tickets: int


class ValuePage(Schema):
    items: list[ValueOut]
    next_cursor: str | None


def _ticket_out(ticket: Ticket, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": ticket.pk, "number": ticket.number, "customer_id": ticket.customer_id,
        "customer_name": ticket.customer.name, "contract_id": ticket.contract_id,
        "title": ticket.title, "description": ticket.description,
        "priority": ticket.priority, "status": ticket.status, "owner_id": ticket.owner_id,
        "owner_name": ticket.owner.name if ticket.owner_id else None,
        "opened_at": ticket.opened_at, "respond_by": ticket.respond_by,
        "resolve_by": ticket.resolve_by, "responded_at": ticket.responded_at,
        "resolved_at": ticket.resolved_at, "closed_at": ticket.closed_at,
        "resolution": ticket.resolution, "sla": selectors.sla_state(ticket, now),
        "allowed_actions": services.allowed_actions(ticket),
    }


def _fresh(request: HttpRequest, ticket_id: int) -> dict[str, Any]:
    return _ticket_out(selectors.get_ticket(request.user, ticket_id), timezone.now())


def _owner(request: HttpRequest, owner_id: int) -> Any:
    owner = visible_employees(request.user).filter(pk=owner_id).select_related(
        "department").first()
    if owner is None:
        raise ValidationFailed(
            _("No such employee among the people you may assign to."), field="owner_id"
        )
    return owner


# --- After-sale lists (declared before /{ticket_id} routes) ---------------------------------
@router.get("/aftersale/repurchase-due", response=RepurchasePage)
def repurchase_due(
    request: HttpRequest, within_days: int = 30, cursor: str | None = None, size: int = 50,
) -> Any:
    page = aftersale.repurchase_due(request.user, within_days=within_days, cursor=cursor,
                                    size=size)
    items = [
        {
            "customer_id": row.customer.pk, "customer_name": row.customer.name,
            "owner_name": row.customer.owner.name if row.customer.owner_id else None,
            "product_id": row.product.pk, "product_name": row.product.name,
            "last_purchase": row.last_purchase, "due_on": row.due_on,
            "days_overdue": row.days_overdue,
        }
        for row in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.get("/aftersale/upsell", response=UpsellPage)
def upsell_candidates(request: HttpRequest, cursor: str | None = None, size: int = 50) -> Any:
    page = aftersale.upsell_candidates(request.user, cursor=cursor, size=size)
    items = [
        {
            "customer_id": row.customer.pk, "customer_name": row.customer.name,
            "owner_name": row.customer.owner.name if row.customer.owner_id else None,
            "total_collected": row.customer.total_collected,
            "suggestions": [
                {"product_id": p.pk, "code": p.code, "name": p.name, "category": p.category}
                for p in row.suggestions
            ],
        }
        for row in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.get("/aftersale/customer-value", response=ValuePage)
def customer_value(
    request: HttpRequest, sort: str = aftersale.DEFAULT_VALUE_SORT, cursor: str | None = None,
    size: int = 50,
) -> Any:
    page = aftersale.customer_value(request.user, sort=sort, cursor=cursor, size=size)
    items = [
        {
            "customer_id": c.pk, "customer_name": c.name,
            "owner_name": c.owner.name if c.owner_id else None,
            "total_signed": c.total_signed, "total_collected": c.total_collected,
            "outstanding": c.outstanding, "last_purchase": c.last_purchase_at,
            "contracts": c.contract_count, "open_tickets": c.open_ticket_count,
        }
        for c in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


# --- Tickets --------------------------------------------------------------------------------
@router.get("/", response=TicketPage)
def list_tickets(
    request: HttpRequest, status: str = "", priority: str = "", sla: str = "",
    owner_id: int | None = None, customer_id: int | None = None, q: str = "",
    sort: str = selectors.DEFAULT_SORT, cursor: str | None = None, size: int = 50,
) -> Any:
    now = timezone.now()
    if sort not in selectors.TICKET_SORTS:
        raise ValidationFailed(
            _("Sort by one of: %(keys)s.") % {"keys": ", ".join(selectors.TICKET_SORTS)},
            field="sort",
        )
    qs = selectors.filter_tickets(
        request.user, now=now, status=status, priority=priority, sla=sla, owner_id=owner_id,
        customer_id=customer_id, q=q,
    )
    page = keyset_page(qs, selectors.TICKET_SORTS[sort], cursor=cursor, size=size)
    return {"items": [_ticket_out(t, now) for t in page.items], "next_cursor": page.next_cursor}


@router.post("/", response={201: TicketOut})
def create_ticket(request: HttpRequest, payload: TicketIn) -> Any:
    customer = scoped(Customer.objects.all(), request.user).filter(pk=payload.customer_id).first()
    if customer is None:
        raise NotFound(_("This customer does not exist or is outside what you may see."))
    contract = None
    if payload.contract_id is not None:
        contract = Contract.objects.filter(pk=payload.contract_id, customer=customer).first()
        if contract is None:
            raise ValidationFailed(
                _("This contract is not one of this customer's; pick one of theirs."),
                field="contract_id",
            )
    owner = _owner(request, payload.owner_id) if payload.owner_id is not None else None
    ticket = services.open_ticket(
        actor=request.user, customer=customer, title=payload.title,
        description=payload.description, priority=payload.priority, contract=contract,
        owner=owner,
    )
    return Status(201, _fresh(request, ticket.pk))


@router.get("/{int:ticket_id}", response=TicketOut)
def get_ticket(request: HttpRequest, ticket_id: int) -> Any:
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/start", response=TicketOut)
def start_ticket(request: HttpRequest, ticket_id: int) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.start_ticket(actor=request.user, ticket=ticket)
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/wait", response=TicketOut)
def wait_for_customer(request: HttpRequest, ticket_id: int) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.wait_for_customer(actor=request.user, ticket=ticket)
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/resolve", response=TicketOut)
def resolve_ticket(request: HttpRequest, ticket_id: int, payload: ResolveIn) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.resolve_ticket(actor=request.user, ticket=ticket, resolution=payload.resolution)
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/close", response=TicketOut)
def close_ticket(request: HttpRequest, ticket_id: int) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.close_ticket(actor=request.user, ticket=ticket)
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/reopen", response=TicketOut)
def reopen_ticket(request: HttpRequest, ticket_id: int, payload: ReopenIn) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.reopen_ticket(actor=request.user, ticket=ticket, reason=payload.reason)
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/reassign", response=TicketOut)
def reassign_ticket(request: HttpRequest, ticket_id: int, payload: ReassignIn) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.reassign_ticket(actor=request.user, ticket=ticket,
                             owner=_owner(request, payload.owner_id))
    return _fresh(request, ticket_id)


@router.post("/{int:ticket_id}/priority", response=TicketOut)
def change_priority(request: HttpRequest, ticket_id: int, payload: PriorityIn) -> Any:
    ticket = selectors.get_ticket(request.user, ticket_id)
    services.change_priority(actor=request.user, ticket=ticket, priority=payload.priority)
    return _fresh(request, ticket_id)
