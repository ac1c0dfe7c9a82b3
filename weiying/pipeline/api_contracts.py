"""HTTP API for contracts, their collection plans and receipts, quotes and the product list,
mounted at /api/contracts (quotes under /api/contracts/quotes, products under
/api/contracts/products, the collections overview at /api/contracts/receivables)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from weiying.catalog.models import Product
from weiying.catalog.selectors import products_for, warnings_for
from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.org.models import Employee
from weiying.pipeline.models import Contract, Opportunity, Quote, Receipt
from weiying.pipeline.selectors import contracts as selectors
from weiying.pipeline.services import contracts as services
from weiying.pipeline.services import quotes as quote_services

router = Router(tags=["contracts"])


# --- Schemas --------------------------------------------------------------------------------
class LineIn(Schema):
    product_id: int
    sku_id: int | None = Field(None, description="one of the product's SKUs; optional")
    quantity: Decimal = Field(gt=0)
    unit_price: Decimal | None = Field(None, description="VAT included; default list price")
    discount: Decimal = Field(Decimal(0), description="a fraction: 0.15 = 15 % off")
    vat_rate: Decimal | None = Field(None, description="default: the product's rate")
    description: str = ""


class LineOut(Schema):
    id: int
    product_id: int
    sku_id: int | None
    product_code: str
    product_name: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    vat_rate: Decimal
    amount: Decimal
    net: Decimal
    vat: Decimal

    @staticmethod
    def resolve_product_code(obj: Any) -> str:
        return obj.product.code

    @staticmethod
    def resolve_product_name(obj: Any) -> str:
        return obj.product.name


class InstalmentOut(Schema):
    id: int
    seq: int
    due_on: dt.date
    amount: Decimal
    collected: Decimal


class ReceiptOut(Schema):
    id: int
    contract_id: int
    instalment_id: int | None
    amount: Decimal
    received_on: dt.date
    method: str
    reference: str
    external_id: str | None
    recorded_by_id: int | None
    created_at: dt.datetime


class ContractOut(Schema):
    id: int
    number: str
    title: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    department_id: int | None
    opportunity_id: int | None
    quote_id: int | None
    status: str
    total: Decimal
    total_net: Decimal
    total_vat: Decimal
    max_discount: Decimal
    collected: Decimal
    outstanding: Decimal
    signed_on: dt.date | None
    start_on: dt.date | None
    end_on: dt.date | None
    submitted_at: dt.datetime | None
    approved_by_id: int | None
    approved_at: dt.datetime | None
    rejection_reason: str
    cancel_reason: str
    delivered_on: dt.date | None
    accepted_on: dt.date | None
    completed_on: dt.date | None
    note: str
    created_at: dt.datetime

    @staticmethod
    def resolve_customer_name(obj: Contract) -> str:
        return obj.customer.name


class ContractDetailOut(ContractOut):
    lines: list[LineOut]
    instalments: list[InstalmentOut]
    receipts: list[ReceiptOut]
    allowed_actions: list[str]
    availability: list[str] = Field(
        description="what stock or capacity cannot deliver of the lines, before signing")

    @staticmethod
    def resolve_availability(obj: Contract) -> list[str]:
        return warnings_for(obj)


class ContractPage(Schema):
    items: list[ContractOut]
    next_cursor: str | None = None


class ContractIn(Schema):
    customer_id: int
    title: str = Field(min_length=1, max_length=128)
    lines: list[LineIn] = []
    owner_id: int | None = None
    opportunity_id: int | None = None
    start_on: dt.date | None = None
    end_on: dt.date | None = None
    note: str = ""


class ContractPatch(Schema):
    title: str | None = Field(None, min_length=1, max_length=128)
    lines: list[LineIn] | None = None
    start_on: dt.date | None = None
    end_on: dt.date | None = None
    note: str | None = None


class ActionIn(Schema):
    reason: str = ""
    signed_on: dt.date | None = None
    delivered_on: dt.date | None = None
    accepted_on: dt.date | None = None
    completed_on: dt.date | None = None


class InstalmentIn(Schema):
    due_on: dt.date
    amount: Decimal


class PlanIn(Schema):
    plan: list[InstalmentIn] = Field(min_length=1)


class ReceiptIn(Schema):
    amount: Decimal
    received_on: dt.date
    method: str
    reference: str = Field("", max_length=64)
    instalment_id: int | None = None
    external_id: str | None = Field(None, max_length=64)


class ReceiptPage(Schema):
    items: list[ReceiptOut]


class QuoteOut(Schema):
    id: int
    number: str
    customer_id: int
    customer_name: str
    opportunity_id: int | None
    owner_id: int | None
    status: str
    valid_until: dt.date | None
    total: Decimal
    created_at: dt.datetime

    @staticmethod
    def resolve_customer_name(obj: Quote) -> str:
        return obj.customer.name


class QuoteDetailOut(QuoteOut):
    lines: list[LineOut]
    contract_ids: list[int]
    allowed_actions: list[str]
    availability: list[str] = Field(
        description="what stock or capacity cannot deliver of the lines")

    @staticmethod
    def resolve_availability(obj: Quote) -> list[str]:
        return warnings_for(obj)

    @staticmethod
    def resolve_contract_ids(obj: Quote) -> list[int]:
        return [c.pk for c in obj.contracts.all()]


class QuotePage(Schema):
    items: list[QuoteOut]
    next_cursor: str | None = None


class QuoteIn(Schema):
    customer_id: int
    lines: list[LineIn] = Field(min_length=1)
    opportunity_id: int | None = None
    owner_id: int | None = None
    valid_until: dt.date | None = None


class ConvertIn(Schema):
    title: str = Field("", max_length=128)


class ProductOut(Schema):
    id: int
    code: str
    name: str
    category: str
    unit: str
    list_price: Decimal
    vat_rate: Decimal
    lifecycle_days: int | None
    is_active: bool


class ProductPage(Schema):
    items: list[ProductOut]
    next_cursor: str | None = None


class ReceivableOut(Schema):
    id: int
    number: str
    title: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    status: str
    total: Decimal
    collected: Decimal
    due: Decimal
    overdue: Decimal
    outstanding: Decimal
    next_due_on: dt.date | None

    @staticmethod
    def resolve_customer_name(obj: Contract) -> str:
        return obj.customer.name

    @staticmethod
    def resolve_outstanding(obj: Contract) -> Decimal:
        return obj.total - obj.collected


class ReceivableCustomerOut(Schema):
    customer_id: int
    customer: str
    contracts: int
    total: Decimal
    collected: Decimal
    due: Decimal
    overdue: Decimal
    outstanding: Decimal
    next_due_on: dt.date | None


class ReceivablesOut(Schema):
    today: dt.date
    total: Decimal
    collected: Decimal
    due: Decimal
    overdue: Decimal
    outstanding: Decimal
    customers: list[ReceivableCustomerOut]
    items: list[ReceivableOut]
    next_cursor: str | None = None


# --- Helpers --------------------------------------------------------------------------------
def _lines_in(lines: list[LineIn]) -> list[dict[str, Any]]:
    wanted = {line.product_id for line in lines}
    products = Product.objects.in_bulk(wanted)
    out = []
    for i, line in enumerate(lines):
        product = products.get(line.product_id)
        if product is None:
            raise ValidationFailed(
                _("Line %(n)s: pick a product from the catalogue.") % {"n": i + 1},
                field=f"lines.{i}.product_id",
            )
        out.append({
            "product": product, "quantity": line.quantity, "unit_price": line.unit_price,
            "discount": line.discount, "vat_rate": line.vat_rate,
            "description": line.description, "sku": line.sku_id,
        })
    return out


def _detail(request: HttpRequest, contract_id: int) -> Contract:
    """The contract with its lines, plan and receipts prefetched, and the actions the caller
    may take on it now."""
    contract = selectors.contract_detail(request.user, contract_id)
    contract.allowed_actions = services.allowed_actions(request.user, contract)
    return contract


def _contract(request: HttpRequest, contract_id: int) -> Contract:
    contract = scoped(Contract.objects.filter(pk=contract_id), request.user).first()
    if contract is None:
        raise NotFound()
    return contract


def _customer(request: HttpRequest, customer_id: int) -> Customer:
    customer = scoped(Customer.objects.filter(pk=customer_id), request.user).first()
    if customer is None:
        raise NotFound(_("This customer does not exist or is outside what you may see."))
    return customer


def _employee(owner_id: int | None) -> Employee | None:
    if owner_id is None:
        return None
    owner = Employee.objects.select_related("department").filter(pk=owner_id).first()
    if owner is None:
        raise ValidationFailed(_("There is no employee with this id."), field="owner_id")
    return owner


def _opportunity(request: HttpRequest, opportunity_id: int | None) -> Opportunity | None:
    if opportunity_id is None:
        return None
    opportunity = scoped(Opportunity.objects.filter(pk=opportunity_id), request.user).first()
    if opportunity is None:
        raise ValidationFailed(_("This opportunity does not exist or is outside what you may "
                                 "see."), field="opportunity_id")
    return opportunity


# --- Contracts ------------------------------------------------------------------------------
@router.get("", response=ContractPage)
def list_contracts(
    request: HttpRequest, status: str = "", owner: int | None = None,
    customer: int | None = None, cursor: str | None = None, size: int = PAGE_SIZE,
) -> Any:
    qs = selectors.contracts_for(request.user, status=status, owner=owner, customer=customer)
    page = keyset_page(qs, ["-created_at", "-id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("", response={201: ContractDetailOut})
def create_contract(request: HttpRequest, payload: ContractIn) -> Any:
    contract = services.create_contract(
        actor=request.user, customer=_customer(request, payload.customer_id),
        title=payload.title, lines=_lines_in(payload.lines),
        owner=_employee(payload.owner_id),
        opportunity=_opportunity(request, payload.opportunity_id),
        start_on=payload.start_on, end_on=payload.end_on, note=payload.note,
    )
    return Status(201, _detail(request, contract.pk))


# Fixed paths come before "/{contract_id}" so they are never read as an id.
@router.get("/products", response=ProductPage, tags=["products"])
def list_products(
    request: HttpRequest, search: str = "", category: str = "", active: bool | None = True,
    cursor: str | None = None, size: int = PAGE_SIZE,
) -> Any:
    qs = products_for(request.user, active=active, search=search, category=category)
    page = keyset_page(qs, ["code", "id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/receivables", response=ReceivablesOut, tags=["collections"])
def receivables(
    request: HttpRequest, overdue: bool = False, owner: int | None = None,
    cursor: str | None = None, size: int = PAGE_SIZE,
) -> Any:
    """Collections overview: per contract and per customer, collected vs due vs overdue."""
    from django.utils import timezone

    today = timezone.localdate()
    qs = selectors.receivable_contracts(request.user, today=today, overdue_only=overdue,
                                        owner=owner)
    summary = selectors.receivable_summary(qs)
    page = keyset_page(qs, ["-overdue", "-id"], cursor=cursor, size=size)
    return {
        "today": today, **{k: summary[k] for k in
                           ("total", "collected", "due", "overdue", "outstanding")},
        "customers": selectors.receivable_customers(request.user, today=today,
                                                    overdue_only=overdue, owner=owner),
        "items": page.items, "next_cursor": page.next_cursor,
    }


# --- Quotes ---------------------------------------------------------------------------------
def _quote_detail(request: HttpRequest, quote_id: int) -> Quote:
    quote = selectors.quote_detail(request.user, quote_id)
    quote.allowed_actions = quote_services.quote_actions(request.user, quote)
    return quote


def _quote(request: HttpRequest, quote_id: int) -> Quote:
    quote = scoped(Quote.objects.filter(pk=quote_id), request.user).first()
    if quote is None:
        raise NotFound()
    return quote


@router.get("/quotes", response=QuotePage, tags=["quotes"])
def list_quotes(
    request: HttpRequest, status: str = "", customer: int | None = None,
    cursor: str | None = None, size: int = PAGE_SIZE,
) -> Any:
    qs = selectors.quotes_for(request.user, status=status, customer=customer)
    page = keyset_page(qs, ["-created_at", "-id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("/quotes", response={201: QuoteDetailOut}, tags=["quotes"])
def create_quote(request: HttpRequest, payload: QuoteIn) -> Any:
    quote = quote_services.create_quote(
        actor=request.user, customer=_customer(request, payload.customer_id),
        lines=_lines_in(payload.lines),
        opportunity=_opportunity(request, payload.opportunity_id),
        owner=_employee(payload.owner_id), valid_until=payload.valid_until,
    )
    return Status(201, _quote_detail(request, quote.pk))


@router.get("/quotes/{int:quote_id}", response=QuoteDetailOut, tags=["quotes"])
def get_quote(request: HttpRequest, quote_id: int) -> Any:
    return _quote_detail(request, quote_id)


@router.post("/quotes/{int:quote_id}/convert", response={201: ContractDetailOut},
             tags=["quotes"])
def convert_quote(request: HttpRequest, quote_id: int, payload: ConvertIn | None = None) -> Any:
    contract = quote_services.convert_quote(actor=request.user,
                                            quote=_quote(request, quote_id),
                                            title=payload.title if payload else "")
    return Status(201, _detail(request, contract.pk))


def _quote_action(name: str, runner: Any) -> None:
    def handler(request: HttpRequest, quote_id: int) -> Any:
        runner(actor=request.user, quote=_quote(request, quote_id))
        return _quote_detail(request, quote_id)

    handler.__name__ = f"quote_{name}"
    router.post(f"/quotes/{{int:quote_id}}/{name}", response=QuoteDetailOut, tags=["quotes"],
                operation_id=f"quote_{name}", summary=f"Quote: {name}")(handler)


_quote_action("send", quote_services.send_quote)
_quote_action("accept", quote_services.accept_quote)
_quote_action("reject", quote_services.reject_quote)


# --- One contract ---------------------------------------------------------------------------
@router.get("/{int:contract_id}", response=ContractDetailOut)
def get_contract(request: HttpRequest, contract_id: int) -> Any:
    return _detail(request, contract_id)


@router.patch("/{int:contract_id}", response=ContractDetailOut)
def update_contract(request: HttpRequest, contract_id: int, payload: ContractPatch) -> Any:
    fields: dict[str, Any] = {}
    sent = payload.dict(exclude_unset=True)
    for name in ("title", "start_on", "end_on", "note"):
        if name in sent:
            fields[name] = sent[name]
    if payload.lines is not None:
        fields["lines"] = _lines_in(payload.lines)
    services.update_contract(actor=request.user, contract=_contract(request, contract_id),
                             **fields)
    return _detail(request, contract_id)


def _contract_action(action: str) -> None:
    def handler(request: HttpRequest, contract_id: int, payload: ActionIn | None = None) -> Any:
        inputs = payload.dict() if payload else {}
        services.run_action(actor=request.user, contract=_contract(request, contract_id),
                            action=action, **inputs)
        return _detail(request, contract_id)

    handler.__name__ = f"contract_{action}"
    transition = services.TRANSITIONS[action]
    router.post(
        f"/{{int:contract_id}}/{action}", response=ContractDetailOut,
        operation_id=f"contract_{action}", summary=f"Contract: {action}",
        description=(
            f"From {', '.join(transition.sources)} to {transition.target}; needs the "
            f"permission {transition.permission}"
            + (f" and {', '.join(transition.needs)}." if transition.needs else ".")
        ),
    )(handler)


for _action in services.TRANSITIONS:
    _contract_action(_action)


@router.put("/{int:contract_id}/instalments", response=list[InstalmentOut])
def plan_instalments(request: HttpRequest, contract_id: int, payload: PlanIn) -> Any:
    return services.plan_instalments(
        actor=request.user, contract=_contract(request, contract_id),
        plan=[(row.due_on, row.amount) for row in payload.plan],
    )


@router.get("/{int:contract_id}/receipts", response=ReceiptPage)
def list_receipts(request: HttpRequest, contract_id: int) -> Any:
    contract = _contract(request, contract_id)
    return {"items": list(contract.receipts.order_by("received_on", "pk"))}


@router.post("/{int:contract_id}/receipts", response={200: ReceiptOut, 201: ReceiptOut})
def create_receipt(request: HttpRequest, contract_id: int, payload: ReceiptIn) -> Any:
    """A repeat with the same external_id answers 200 with the receipt already recorded."""
    contract = _contract(request, contract_id)
    instalment = None
    if payload.instalment_id is not None:
        instalment = contract.instalments.filter(pk=payload.instalment_id).first()
        if instalment is None:
            raise ValidationFailed(_("This instalment belongs to another contract."),
                                   code="instalment_mismatch", field="instalment_id")
    repeat = bool(payload.external_id) and Receipt.objects.filter(
        external_id=payload.external_id.strip(), contract=contract).exists()
    receipt = services.record_receipt(
        actor=request.user, contract=contract, amount=payload.amount,
        received_on=payload.received_on, method=payload.method, reference=payload.reference,
        instalment=instalment, external_id=payload.external_id,
    )
    return Status(200 if repeat else 201, receipt)
