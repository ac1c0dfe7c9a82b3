"""HTTP API for opportunities and pipelines, mounted at /api/opportunities."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.customers.models import Customer
from weiying.org.models import Employee
from weiying.pipeline.models import Lead, Opportunity, Pipeline, Stage
from weiying.pipeline.selectors import opportunities as selectors
from weiying.pipeline.services import opportunities as services

router = Router(tags=["opportunities"])


# --- schemas --------------------------------------------------------------------------------
class OpportunityOut(Schema):
    id: int
    name: str
    customer_id: int
    customer_name: str
    pipeline_id: int
    stage_id: int
    stage_name: str
    status: str
    amount: str
    expected_close: dt.date | None
    owner_id: int | None
    owner_name: str
    stage_entered_at: dt.datetime
    closed_at: dt.datetime | None
    lost_reason: str
    close_note: str
    last_activity_at: dt.datetime
    created_at: dt.datetime


class LineOut(Schema):
    product_id: int
    product_name: str
    quantity: str
    amount: str


class StayOut(Schema):
    stage_id: int
    stage_name: str
    entered_at: dt.datetime
    seconds: int
    current: bool


class OpportunityDetailOut(OpportunityOut):
    lines: list[LineOut]
    history: list[StayOut]


class OpportunityPage(Schema):
    items: list[OpportunityOut]
    next_cursor: str | None


class LineIn(Schema):
    product_id: int
    quantity: Decimal = Decimal(1)
    amount: Decimal


class OpportunityIn(Schema):
    customer_id: int
    name: str
    amount: Decimal = Decimal(0)
    expected_close: dt.date | None = None
    owner_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    lead_id: int | None = None
    lines: list[LineIn] = []


class MoveIn(Schema):
    stage_id: int


class WonIn(Schema):
    note: str = ""


class LostIn(Schema):
    reason: str
    note: str = ""


class StageOut(Schema):
    id: int
    name: str
    order: int
    probability: int
    kind: str


class PipelineOut(Schema):
    id: int
    name: str
    is_default: bool
    stages: list[StageOut]


class ListFilters(Schema):
    stage: int | None = None
    status: str = ""
    owner: int | None = None
    team: int | None = None
    pipeline: int | None = None
    customer: int | None = None
    close_month: str = ""
    q: str = ""
    sort: str = "-activity"
    cursor: str | None = None
    size: int = PAGE_SIZE


# --- helpers --------------------------------------------------------------------------------
def _out(o: Opportunity) -> dict[str, Any]:
    return {
        "id": o.pk, "name": o.name, "customer_id": o.customer_id,
        "customer_name": o.customer.name, "pipeline_id": o.pipeline_id,
        "stage_id": o.stage_id, "stage_name": o.stage.name, "status": o.status,
        "amount": str(o.amount), "expected_close": o.expected_close, "owner_id": o.owner_id,
        "owner_name": o.owner.name if o.owner else "", "stage_entered_at": o.stage_entered_at,
        "closed_at": o.closed_at, "lost_reason": o.lost_reason, "close_note": o.close_note,
        "last_activity_at": o.last_activity_at, "created_at": o.created_at,
    }


def _detail(user: Any, pk: int) -> dict[str, Any]:
    o = selectors.get_opportunity(user, pk)
    lines = [
        {"product_id": li.product_id, "product_name": li.product.name,
         "quantity": str(li.quantity), "amount": str(li.amount)}
        for li in o.lines.select_related("product").order_by("pk")
    ]
    history = [
        {"stage_id": s.stage.pk, "stage_name": s.stage.name, "entered_at": s.entered_at,
         "seconds": s.seconds, "current": s.current}
        for s in selectors.stage_history(o)
    ]
    return {**_out(o), "lines": lines, "history": history}


def _stage(pk: int) -> Stage:
    stage = Stage.objects.select_related("pipeline").filter(pk=pk).first()
    if stage is None:
        raise ValidationFailed(_("That stage does not exist."), field="stage_id")
    return stage


# --- routes ---------------------------------------------------------------------------------
@router.get("", response=OpportunityPage, summary="List opportunities in your scope")
def list_opportunities(request: HttpRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    if filters.sort not in selectors.SORTS:
        raise ValidationFailed(
            _("Sort by one of: %(keys)s.") % {"keys": ", ".join(selectors.SORTS)}, field="sort"
        )
    qs = selectors.filter_opportunities(
        selectors.opportunities_for(request.user), stage=filters.stage, status=filters.status,
        owner=filters.owner, team=filters.team, close_month=filters.close_month, q=filters.q,
        pipeline=filters.pipeline, customer=filters.customer,
    )
    page = keyset_page(qs, selectors.SORTS[filters.sort], cursor=filters.cursor,
                       size=filters.size)
    return {"items": [_out(o) for o in page.items], "next_cursor": page.next_cursor}


@router.get("/pipelines", response=list[PipelineOut], summary="Pipelines and their stages")
def list_pipelines(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {"id": p.pk, "name": p.name, "is_default": p.is_default,
         "stages": [{"id": s.pk, "name": s.name, "order": s.order,
                     "probability": s.probability, "kind": s.kind}
                    for s in sorted(p.stages.all(), key=lambda s: s.order)]}
        for p in selectors.pipelines_with_stages()
    ]


@router.post("", response={201: OpportunityDetailOut}, summary="Create an opportunity")
def create(request: HttpRequest, payload: OpportunityIn) -> Status:
    customer = Customer.objects.filter(pk=payload.customer_id).first()
    if customer is None:
        raise NotFound(_("That customer does not exist or is outside what you may see."))
    owner = None
    if payload.owner_id is not None:
        owner = Employee.objects.select_related("department").filter(
            pk=payload.owner_id).first()
        if owner is None:
            raise ValidationFailed(_("That employee does not exist."), field="owner_id")
    pipeline = None
    if payload.pipeline_id is not None:
        pipeline = Pipeline.objects.filter(pk=payload.pipeline_id).first()
        if pipeline is None:
            raise ValidationFailed(_("That pipeline does not exist."), field="pipeline_id")
    lead = None
    if payload.lead_id is not None:
        lead = Lead.objects.filter(pk=payload.lead_id).first()
        if lead is None:
            raise NotFound(_("That lead does not exist or is outside what you may see."))
    opportunity = services.create_opportunity(
        actor=request.user, customer=customer, name=payload.name, amount=payload.amount,
        expected_close=payload.expected_close, owner=owner, pipeline=pipeline,
        stage=_stage(payload.stage_id) if payload.stage_id is not None else None,
        lines=[{"product": li.product_id, "quantity": li.quantity, "amount": li.amount}
               for li in payload.lines],
        lead=lead,
    )
    return Status(201, _detail(request.user, opportunity.pk))


@router.get("/{int:opportunity_id}", response=OpportunityDetailOut,
            summary="An opportunity with its lines and stage history")
def get(request: HttpRequest, opportunity_id: int) -> dict[str, Any]:
    return _detail(request.user, opportunity_id)


@router.post("/{int:opportunity_id}/move", response=OpportunityDetailOut,
             summary="Move to another open stage")
def move(request: HttpRequest, opportunity_id: int, payload: MoveIn) -> dict[str, Any]:
    opportunity = selectors.get_opportunity(request.user, opportunity_id)
    services.move_stage(actor=request.user, opportunity=opportunity,
                        stage=_stage(payload.stage_id))
    return _detail(request.user, opportunity_id)


@router.post("/{int:opportunity_id}/won", response=OpportunityDetailOut, summary="Mark won")
def won(request: HttpRequest, opportunity_id: int, payload: WonIn) -> dict[str, Any]:
    opportunity = selectors.get_opportunity(request.user, opportunity_id)
    services.mark_won(actor=request.user, opportunity=opportunity, note=payload.note)
    return _detail(request.user, opportunity_id)


@router.post("/{int:opportunity_id}/lost", response=OpportunityDetailOut, summary="Mark lost")
def lost(request: HttpRequest, opportunity_id: int, payload: LostIn) -> dict[str, Any]:
    opportunity = selectors.get_opportunity(request.user, opportunity_id)
    services.mark_lost(actor=request.user, opportunity=opportunity, reason=payload.reason,
                       note=payload.note)
    return _detail(request.user, opportunity_id)


@router.post("/{int:opportunity_id}/reopen", response=OpportunityDetailOut,
             summary="Reopen a won or lost opportunity in its last open stage")
def reopen(request: HttpRequest, opportunity_id: int) -> dict[str, Any]:
    opportunity = selectors.get_opportunity(request.user, opportunity_id)
    services.reopen_opportunity(actor=request.user, opportunity=opportunity)
    return _detail(request.user, opportunity_id)
