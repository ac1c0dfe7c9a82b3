"""HTTP API for leads, mounted at /api/leads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import File, Router, Schema, Status, UploadedFile

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.permissions import require
from weiying.core.scope import scoped, visible_employees
from weiying.pipeline.models import Lead
from weiying.pipeline.selectors.leads import lead_detail, list_leads
from weiying.pipeline.services import leads as services

router = Router(tags=["leads"])


class LeadOut(Schema):
    id: int
    name: str
    company_name: str
    phone: str
    wechat: str
    email: str
    city: str
    region: str
    source: str
    channel: str
    interest: str
    external_id: str | None
    status: str
    owner_id: int | None
    owner_name: str | None
    department_id: int | None
    assigned_at: dt.datetime | None
    first_response_at: dt.datetime | None
    first_response_seconds: int | None
    disqualify_reason: str
    customer_id: int | None
    opportunity_id: int | None
    converted_at: dt.datetime | None
    last_activity_at: dt.datetime
    created_at: dt.datetime

    @staticmethod
    def resolve_phone(obj: Lead) -> str:
        return obj.masked_phone

    @staticmethod
    def resolve_owner_name(obj: Lead) -> str | None:
        return obj.owner.name if obj.owner_id else None


class LeadPage(Schema):
    items: list[LeadOut]
    next_cursor: str | None = None


class LeadIn(Schema):
    name: str
    phone: str = ""
    company_name: str = ""
    wechat: str = ""
    email: str = ""
    city: str = ""
    region: str = ""
    source: str = "api"
    channel: str = ""
    interest: str = ""
    note: str = ""
    external_id: str | None = None
    owner_id: int | None = None


class AssignIn(Schema):
    owner_id: int


class DisqualifyIn(Schema):
    reason: str
    note: str = ""


class ConvertIn(Schema):
    customer_id: int | None = None
    create_opportunity: bool = True
    opportunity_name: str = ""
    amount: Decimal | None = None
    expected_close: dt.date | None = None


class ConvertOut(Schema):
    lead: LeadOut
    customer_id: int
    opportunity_id: int | None


class ErrorOut(Schema):
    code: str
    message: str


def _employee(user: Any, pk: int, field: str) -> Any:
    employee = visible_employees(user).select_related("department").filter(pk=pk).first()
    if employee is None:
        raise ValidationFailed(_("No employee %(id)s that you may see.") % {"id": pk},
                               field=field)
    return employee


@router.get("/", response=LeadPage, summary="List leads")
def list_endpoint(
    request: HttpRequest, q: str = "", status: str = "", source: str = "",
    owner_id: int | None = None, department_id: int | None = None, sort: str = "-activity",
    cursor: str | None = None, size: int = 50,
) -> dict[str, Any]:
    page = list_leads(request.user, q=q, status=status, source=source, owner_id=owner_id,
                      department_id=department_id, sort=sort, cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("/", response={200: LeadOut, 201: LeadOut, 400: ErrorOut, 403: ErrorOut},
             summary="Capture a lead (idempotent by external_id)")
def create_endpoint(request: HttpRequest, payload: LeadIn) -> Status:
    data = payload.dict()
    owner_id = data.pop("owner_id")
    external_id = (data.get("external_id") or "").strip()
    existed = bool(external_id) and Lead.objects.filter(external_id=external_id).exists()
    owner = _employee(request.user, owner_id, "owner_id") if owner_id else None
    lead = services.capture_lead(actor=request.user, owner=owner, **data)
    if existed:
        # A retry: the lead as it is, if the caller may see it.
        return Status(200, lead_detail(request.user, lead.pk))
    return Status(201, Lead.objects.select_related("owner").get(pk=lead.pk))


@router.get("/{int:lead_id}", response={200: LeadOut, 404: ErrorOut}, summary="One lead")
def get_endpoint(request: HttpRequest, lead_id: int) -> Lead:
    return lead_detail(request.user, lead_id)


@router.post("/{int:lead_id}/assign", response={200: LeadOut, 400: ErrorOut, 403: ErrorOut,
                                            404: ErrorOut, 409: ErrorOut})
def assign_endpoint(request: HttpRequest, lead_id: int, payload: AssignIn) -> Lead:
    require(request.user, "lead.assign")
    lead = lead_detail(request.user, lead_id)
    owner = _employee(request.user, payload.owner_id, "owner_id")
    services.assign_lead(actor=request.user, lead=lead, owner=owner)
    return lead_detail(request.user, lead_id)


@router.post("/{int:lead_id}/disqualify", response={200: LeadOut, 400: ErrorOut, 403: ErrorOut,
                                                404: ErrorOut, 409: ErrorOut})
def disqualify_endpoint(request: HttpRequest, lead_id: int, payload: DisqualifyIn) -> Lead:
    lead = lead_detail(request.user, lead_id)
    services.disqualify_lead(actor=request.user, lead=lead, reason=payload.reason,
                             note=payload.note)
    return lead_detail(request.user, lead_id)


@router.post("/{int:lead_id}/convert", response={200: ConvertOut, 400: ErrorOut, 403: ErrorOut,
                                             404: ErrorOut, 409: ErrorOut})
def convert_endpoint(request: HttpRequest, lead_id: int, payload: ConvertIn) -> dict[str, Any]:
    from weiying.customers.models import Customer

    lead = lead_detail(request.user, lead_id)
    customer = None
    if payload.customer_id is not None:
        customer = scoped(Customer.objects.all(), request.user).filter(
            pk=payload.customer_id
        ).first()
        if customer is None:
            raise NotFound(_("That customer does not exist or is outside what you may see."))
    customer, opportunity = services.convert_lead(
        actor=request.user, lead=lead, customer=customer,
        create_opportunity=payload.create_opportunity,
        opportunity_name=payload.opportunity_name, amount=payload.amount,
        expected_close=payload.expected_close,
    )
    return {"lead": lead_detail(request.user, lead_id), "customer_id": customer.pk,
            "opportunity_id": opportunity.pk if opportunity else None}


@router.post("/import", response={200: dict, 400: ErrorOut, 403: ErrorOut, 409: ErrorOut},
             summary="Import leads (or customers) from a CSV or .xlsx file")
def import_endpoint(
    request: HttpRequest, file: UploadedFile = File(...), kind: str = "leads",  # noqa: B008
    valid_only: bool = False,
) -> dict[str, Any]:
    """Returns the report: counts and up to 1,000 errors (row, column, message). With any
    rejected row and `valid_only` false, nothing is imported."""
    from weiying.pipeline.imports import IMPORTERS

    if kind not in IMPORTERS:
        raise ValidationFailed(_("kind must be leads or customers."), field="kind")
    report = IMPORTERS[kind](file, actor=request.user, valid_only=valid_only,
                             file_name=file.name or "")
    return report.as_dict(max_errors=1000)
