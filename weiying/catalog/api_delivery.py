"""HTTP API for delivery orders, mounted at /api/delivery-orders: for an ERP/WMS with an API
token (a role holding delivery.manage) and for the desk.

An ERP names its orders by its own id (`external_id`): creating twice with the same id
returns the order made the first time, and `PUT /by-external/{external_id}` brings the order
to the status the ERP reports; the same update sent again changes nothing (no audit row, no
event) and answers the same. An update that would move an order backwards is refused (409).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from weiying.catalog import delivery_selectors as selectors
from weiying.catalog import delivery_services as services
from weiying.catalog.delivery import DeliveryOrder
from weiying.core.errors import NotFound
from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.core.scope import scoped
from weiying.pipeline.models import Contract

router = Router(tags=["delivery orders"])


class DeliveryLineOut(Schema):
    contract_line_id: int
    product_id: int
    product_code: str
    product_name: str
    quantity: Decimal

    @staticmethod
    def resolve_product_id(obj: Any) -> int:
        return obj.contract_line.product_id

    @staticmethod
    def resolve_product_code(obj: Any) -> str:
        return obj.contract_line.product.code

    @staticmethod
    def resolve_product_name(obj: Any) -> str:
        return obj.contract_line.product.name


class DeliveryOrderOut(Schema):
    id: int
    number: str
    contract_id: int
    contract_number: str
    owner_id: int | None
    status: str
    promised_on: dt.date | None
    shipped_on: dt.date | None
    delivered_on: dt.date | None
    accepted_on: dt.date | None
    acceptance_kind: str
    evidence_note: str
    evidence_url: str
    has_evidence_file: bool
    carrier: str
    tracking_number: str
    warehouse_id: int | None
    warehouse_code: str | None
    external_id: str | None
    cancel_reason: str
    created_at: dt.datetime

    @staticmethod
    def resolve_contract_number(obj: DeliveryOrder) -> str:
        return obj.contract.number

    @staticmethod
    def resolve_warehouse_code(obj: DeliveryOrder) -> str | None:
        return obj.warehouse.code if obj.warehouse_id else None

    @staticmethod
    def resolve_has_evidence_file(obj: DeliveryOrder) -> bool:
        return bool(obj.evidence_file)


class DeliveryOrderDetailOut(DeliveryOrderOut):
    lines: list[DeliveryLineOut]
    allowed_actions: list[str]


class DeliveryOrderPage(Schema):
    items: list[DeliveryOrderOut]
    next_cursor: str | None = None


class DeliveryLineIn(Schema):
    contract_line_id: int
    quantity: Decimal = Field(gt=0)


class DeliveryOrderIn(Schema):
    contract_id: int
    lines: list[DeliveryLineIn] | None = Field(
        None, description="omit for everything still open on the goods and milestone lines")
    promised_on: dt.date | None = None
    warehouse_code: str | None = Field(None, max_length=32,
                                       description="the warehouse it ships from")
    carrier: str = Field("", max_length=64)
    note: str = Field("", max_length=2000)
    external_id: str | None = Field(None, max_length=64,
                                    description="the sender's id; a repeat returns the order")


class ExternalUpdateIn(Schema):
    status: str = Field(description="planned, shipped, delivered, accepted or cancelled")
    shipped_on: dt.date | None = None
    delivered_on: dt.date | None = None
    accepted_on: dt.date | None = None
    acceptance_kind: str | None = Field(None, description="receipt (签收) or inspection (验收)")
    carrier: str | None = Field(None, max_length=64)
    tracking_number: str | None = Field(None, max_length=64)
    warehouse_code: str | None = Field(None, max_length=32)
    evidence_note: str | None = Field(None, max_length=4000)
    evidence_url: str | None = Field(None, max_length=500)
    reason: str | None = Field(None, max_length=255, description="why it was cancelled")


class ExternalUpdateOut(Schema):
    changed: bool
    order: DeliveryOrderDetailOut


def _detail(user: Any, order: DeliveryOrder) -> DeliveryOrder:
    order = selectors.delivery_order_detail(user, order.pk)
    order.allowed_actions = services.allowed_actions(user, order)
    return order


def _update(payload: ExternalUpdateIn) -> services.ExternalUpdate:
    fields = payload.dict()
    fields["warehouse"] = fields.pop("warehouse_code")
    return services.ExternalUpdate(**fields)


@router.get("", response=DeliveryOrderPage)
def list_delivery_orders(
    request: HttpRequest, status: str = "", late: bool = False, contract: int | None = None,
    owner: int | None = None, q: str = "", cursor: str | None = None, size: int = PAGE_SIZE,
) -> Any:
    qs = selectors.delivery_orders_for(request.user, status=status, late=late,
                                       contract=contract, owner=owner, search=q.strip())
    page = keyset_page(qs, ["-created_at", "-id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("", response={200: DeliveryOrderDetailOut, 201: DeliveryOrderDetailOut})
def create_delivery_order(request: HttpRequest, payload: DeliveryOrderIn) -> Any:
    """201 with the new order; 200 with the existing one when `external_id` was used before
    for this contract."""
    contract = scoped(Contract.objects.filter(pk=payload.contract_id), request.user).first()
    if contract is None:
        raise NotFound()
    external_id = (payload.external_id or "").strip() or None
    existed = bool(external_id) and DeliveryOrder.objects.filter(
        external_id=external_id, contract=contract).exists()
    lines = None if payload.lines is None else [
        {"contract_line": line.contract_line_id, "quantity": line.quantity}
        for line in payload.lines
    ]
    order = services.create_delivery_order(
        actor=request.user, contract=contract, lines=lines, promised_on=payload.promised_on,
        warehouse=payload.warehouse_code, carrier=payload.carrier, note=payload.note,
        external_id=external_id,
    )
    return Status(200 if existed else 201, _detail(request.user, order))


# Fixed paths come before "/{order_id}".
@router.get("/by-external/{external_id}", response=DeliveryOrderDetailOut)
def get_by_external(request: HttpRequest, external_id: str) -> Any:
    order = selectors.delivery_order_by_external(request.user, external_id)
    return _detail(request.user, order)


@router.put("/by-external/{external_id}", response=ExternalUpdateOut)
def update_by_external(request: HttpRequest, external_id: str,
                       payload: ExternalUpdateIn) -> Any:
    order = selectors.delivery_order_by_external(request.user, external_id)
    order, changed = services.apply_external_update(
        actor=request.user, order=order,
        update=_update(payload),
    )
    return {"changed": changed, "order": _detail(request.user, order)}


@router.get("/{order_id}", response=DeliveryOrderDetailOut)
def get_delivery_order(request: HttpRequest, order_id: int) -> Any:
    return _detail(request.user, selectors.delivery_order_detail(request.user, order_id))
