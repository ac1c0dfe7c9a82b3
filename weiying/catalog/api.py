"""HTTP API of the catalogue, mounted at /api/catalog: products with their SKUs, bundle
components, stock and capacity; price lists; the price a customer pays; availability; stock
levels, and the stock update an ERP/WMS sends (idempotent by the sender's id)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from weiying.catalog import stock_services
from weiying.catalog.bundles import components
from weiying.catalog.models import CapacityPeriod, Product, StockLevel
from weiying.catalog.selectors import (
    availability,
    price_for,
    price_lists_for,
    product_detail,
    products_for,
)
from weiying.core.errors import NotFound, PermissionDenied
from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.core.scope import data_scope_of, scoped
from weiying.customers.models import Customer
from weiying.org.choices import DataScope

router = Router(tags=["catalogue"])


# --- Schemas --------------------------------------------------------------------------------
class SkuOut(Schema):
    id: int
    code: str
    name: str
    list_price: Decimal = Field(description="the SKU's own, else the product's")
    standard_cost: Decimal
    is_active: bool

    @staticmethod
    def resolve_list_price(obj: Any) -> Decimal:
        return obj.price

    @staticmethod
    def resolve_standard_cost(obj: Any) -> Decimal:
        return obj.cost


class ComponentOut(Schema):
    product_id: int
    code: str
    quantity: Decimal
    standalone_price: Decimal


class ProductOut(Schema):
    id: int
    code: str
    name: str
    category: str
    unit: str
    list_price: Decimal
    vat_rate: Decimal
    standard_cost: Decimal
    standalone_price: Decimal = Field(description="the standalone selling price, else the "
                                                  "list price")
    fulfilment: str
    service_months: int | None
    lifecycle_days: int | None
    is_active: bool

    @staticmethod
    def resolve_standalone_price(obj: Product) -> Decimal:
        return obj.ssp


class StockOut(Schema):
    warehouse_id: int
    warehouse_code: str
    product_id: int
    product_code: str
    on_hand: Decimal
    reserved: Decimal
    free: Decimal

    @staticmethod
    def resolve_warehouse_code(obj: StockLevel) -> str:
        return obj.warehouse.code

    @staticmethod
    def resolve_product_code(obj: StockLevel) -> str:
        return obj.product.code


class CapacityOut(Schema):
    year: int
    month: int
    capacity: Decimal
    reserved: Decimal
    free: Decimal


class ProductDetailOut(ProductOut):
    skus: list[SkuOut]
    components: list[ComponentOut] = Field(description="a bundle's; empty for a product")
    stock: list[StockOut]
    capacity: list[CapacityOut] = Field(description="this month and later")

    @staticmethod
    def resolve_skus(obj: Product) -> list[Any]:
        return list(obj.skus.all())

    @staticmethod
    def resolve_components(obj: Product) -> list[dict[str, Any]]:
        return [{"product_id": c.pk, "code": c.code, "quantity": q, "standalone_price": c.ssp}
                for c, q in components(obj)]

    @staticmethod
    def resolve_stock(obj: Product) -> list[Any]:
        return list(StockLevel.objects.filter(product=obj).select_related("warehouse",
                                                                          "product"))

    @staticmethod
    def resolve_capacity(obj: Product) -> list[Any]:
        today = timezone.localdate()
        return [p for p in CapacityPeriod.objects.filter(product=obj, year__gte=today.year)
                .order_by("year", "month") if (p.year, p.month) >= (today.year, today.month)]


class ProductPage(Schema):
    items: list[ProductOut]
    next_cursor: str | None = None


class PriceListItemOut(Schema):
    product_id: int
    product_code: str
    price: Decimal

    @staticmethod
    def resolve_product_code(obj: Any) -> str:
        return obj.product.code


class PriceListOut(Schema):
    id: int
    name: str
    channel: str
    customer_level: str
    valid_from: dt.date
    valid_until: dt.date | None
    priority: int
    is_active: bool


class PriceListDetailOut(PriceListOut):
    items: list[PriceListItemOut]

    @staticmethod
    def resolve_items(obj: Any) -> list[Any]:
        return list(obj.items.select_related("product").order_by("product__code"))


class PriceListPage(Schema):
    items: list[PriceListOut]
    next_cursor: str | None = None


class PriceOut(Schema):
    product_id: int
    product_code: str
    customer_id: int
    on: dt.date
    price: Decimal
    list_price: Decimal
    price_list_id: int | None
    price_list_name: str | None


class PricePage(Schema):
    items: list[PriceOut]
    next_cursor: str | None = None


class AvailabilityOut(Schema):
    product_id: int
    quantity: Decimal
    on: dt.date
    tracked: bool
    available: Decimal | None
    warning: str


class StockPage(Schema):
    items: list[StockOut]
    next_cursor: str | None = None


class StockUpdateIn(Schema):
    id: str = Field(min_length=1, max_length=120,
                    description="the sender's id of this update: a repeat changes nothing")
    warehouse: str = Field(min_length=1, max_length=32, description="warehouse code")
    product: str = Field(min_length=1, max_length=32, description="product code")
    on_hand: Decimal | None = Field(None, description="a count: what is on hand now")
    received: Decimal | None = Field(None, description="goods that arrived (added)")
    note: str = Field("", max_length=255)


class StockUpdateOut(Schema):
    id: str
    movement_id: int
    kind: str
    change: Decimal
    stock: StockOut


# --- Helpers --------------------------------------------------------------------------------
def _readable(request: HttpRequest) -> None:
    if data_scope_of(request.user) == DataScope.NONE:
        raise PermissionDenied(_("Only employees may read the catalogue."))


# --- Products -------------------------------------------------------------------------------
@router.get("/products", response=ProductPage)
def list_products(
    request: HttpRequest, search: str = "", category: str = "", active: bool | None = True,
    cursor: str | None = None, size: int = PAGE_SIZE,
) -> Any:
    qs = products_for(request.user, active=active, search=search, category=category)
    page = keyset_page(qs, ["code", "id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/products/{int:product_id}", response=ProductDetailOut)
def get_product(request: HttpRequest, product_id: int) -> Any:
    return product_detail(request.user, product_id)


@router.get("/availability", response=AvailabilityOut)
def get_availability(request: HttpRequest, product_id: int, quantity: Decimal = Decimal(1),
                     on: dt.date | None = None) -> Any:
    """Whether `quantity` of the product can be delivered on `on` (default today): goods from
    free stock, services from the month's free capacity, bundles from their components."""
    product = product_detail(request.user, product_id)
    on = on or timezone.localdate()
    found = availability(product, quantity, on)
    return {"product_id": product.pk, "quantity": found.quantity, "on": on,
            "tracked": found.available is not None, "available": found.available,
            "warning": found.warning}


# --- Prices ---------------------------------------------------------------------------------
@router.get("/price-lists", response=PriceListPage)
def list_price_lists(request: HttpRequest, active: bool | None = None,
                     cursor: str | None = None, size: int = PAGE_SIZE) -> Any:
    qs = price_lists_for(request.user, active=active)
    page = keyset_page(qs, ["-valid_from", "-id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/price-lists/{int:price_list_id}", response=PriceListDetailOut)
def get_price_list(request: HttpRequest, price_list_id: int) -> Any:
    price_list = price_lists_for(request.user).filter(pk=price_list_id).first()
    if price_list is None:
        raise NotFound()
    return price_list


@router.get("/customers/{int:customer_id}/prices", response=PricePage)
def customer_prices(request: HttpRequest, customer_id: int, product_id: int | None = None,
                    on: dt.date | None = None, cursor: str | None = None,
                    size: int = PAGE_SIZE) -> Any:
    """The unit price (VAT incl.) the customer pays on `on` (default today) for each active
    product (or the one `product_id` names), and the price list it comes from (none: the
    list price)."""
    customer = scoped(Customer.objects.filter(pk=customer_id), request.user).first()
    if customer is None:
        raise NotFound(_("This customer does not exist or is outside what you may see."))
    on = on or timezone.localdate()
    qs = products_for(request.user, active=True)
    if product_id is not None:
        qs = qs.filter(pk=product_id)
    page = keyset_page(qs, ["code", "id"], cursor=cursor, size=size)
    items = []
    for product in page.items:
        price, price_list = price_for(product, customer, on)
        items.append({
            "product_id": product.pk, "product_code": product.code, "customer_id": customer.pk,
            "on": on, "price": price, "list_price": product.list_price,
            "price_list_id": price_list.pk if price_list else None,
            "price_list_name": price_list.name if price_list else None})
    return {"items": items, "next_cursor": page.next_cursor}


# --- Stock ----------------------------------------------------------------------------------
@router.get("/stock", response=StockPage)
def list_stock(request: HttpRequest, warehouse: str = "", product: str = "",
               cursor: str | None = None, size: int = PAGE_SIZE) -> Any:
    """Stock levels; `warehouse` and `product` filter by code."""
    _readable(request)
    qs = StockLevel.objects.select_related("warehouse", "product")
    if warehouse:
        qs = qs.filter(warehouse__code=warehouse)
    if product:
        qs = qs.filter(product__code=product)
    page = keyset_page(qs, ["id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("/stock", response={200: StockUpdateOut, 201: StockUpdateOut})
def update_stock(request: HttpRequest, payload: StockUpdateIn) -> Any:
    """An ERP/WMS stock update: a count (`on_hand`) or goods received (`received`). Needs
    catalog.manage. A repeat with the same `id` answers 200 with the first result and changes
    nothing; the first answers 201."""
    movement, created = stock_services.apply_stock_update(
        actor=request.user, key=payload.id, warehouse_code=payload.warehouse,
        product_code=payload.product, on_hand=payload.on_hand, received=payload.received,
        note=payload.note,
    )
    stock = StockLevel.objects.select_related("warehouse", "product").get(pk=movement.stock_id)
    return Status(201 if created else 200, {
        "id": payload.id, "movement_id": movement.pk, "kind": movement.kind,
        "change": movement.quantity, "stock": stock,
    })
