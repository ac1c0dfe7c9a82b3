"""Changes to stock and capacity: warehouses, goods received and counted, capacity per month,
and the reservations signed contracts hold (reserved on signing, released on cancellation,
issued on shipment). See weiying.catalog.stock for what the rows mean.

The reservation functions run from the domain events (weiying.catalog.subscribers) and are
idempotent: a replayed event finds its reservations or its ledger rows and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from weiying.catalog.bundles import components
from weiying.catalog.models import (
    CapacityPeriod,
    Fulfilment,
    Product,
    Reservation,
    StockLevel,
    StockMovement,
    Warehouse,
)
from weiying.catalog.services import MANAGE, check_quantity
from weiying.catalog.stock import MovementKind, ReservationStatus
from weiying.core import audit
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.events import emit
from weiying.core.permissions import employee_of, require

logger = logging.getLogger(__name__)
ZERO = Decimal(0)


def uses_capacity(product: Product) -> bool:
    """Services and milestones are delivered from capacity per month; goods from stock."""
    return product.fulfilment != Fulfilment.GOODS


def is_tracked(product: Product) -> bool:
    if uses_capacity(product):
        return CapacityPeriod.objects.filter(product_id=product.pk).exists()
    return StockLevel.objects.filter(product_id=product.pk).exists()


# --- Warehouses and capacity ----------------------------------------------------------------
@transaction.atomic
def create_warehouse(*, actor: Any, code: str, name: str) -> Warehouse:
    require(actor, MANAGE)
    code, name = (code or "").strip(), (name or "").strip()
    if not code or len(code) > 32:
        raise ValidationFailed(_("A warehouse needs a code of at most 32 characters."),
                               field="code")
    if not name:
        raise ValidationFailed(_("A warehouse needs a name."), field="name")
    if Warehouse.objects.filter(code=code).exists():
        raise Conflict(_("Warehouse code %(code)s is already used; pick another.")
                       % {"code": code}, code="duplicate_warehouse_code", field="code")
    warehouse = Warehouse.objects.create(code=code, name=name[:128])
    audit.record(actor, "warehouse.create", warehouse, after=audit.snapshot(warehouse))
    return warehouse


def _month(year: Any, month: Any) -> tuple[int, int]:
    try:
        y, m = int(year), int(month)
    except (TypeError, ValueError):
        y, m = 0, 0
    if not (2000 <= y <= 2100 and 1 <= m <= 12):
        raise ValidationFailed(_("Give a month as a year from 2000 to 2100 and a month from 1 "
                                 "to 12."), field="month")
    return y, m


@transaction.atomic
def set_capacity(*, actor: Any, product: Product, year: Any, month: Any,
                 capacity: Any) -> CapacityPeriod:
    """What `product` (a service or milestone) can deliver in one month. Reservations stay as
    they are: a capacity below them shows the month overbooked."""
    require(actor, MANAGE)
    if not uses_capacity(product):
        raise ValidationFailed(
            _("%(code)s is goods: it is delivered from stock, not capacity. Record its stock "
              "per warehouse instead.") % {"code": product.code}, field="product")
    y, m = _month(year, month)
    capacity = check_quantity(capacity, field="capacity", allow_zero=True)
    period, _created = CapacityPeriod.objects.select_for_update().get_or_create(
        product=product, year=y, month=m)
    before = {"capacity": period.capacity}
    period.capacity = capacity
    period.save(update_fields=["capacity", "updated_at"])
    audit.record(actor, "capacity.set", period, before=before, after={"capacity": capacity})
    return period


# --- Goods received and counted -------------------------------------------------------------
def _key(key: Any, limit: int = 128) -> str | None:
    key = (str(key).strip() if key is not None else "") or None
    if key is not None and len(key) > limit:
        raise ValidationFailed(_("The sender's id is at most %(n)s characters.") % {"n": limit},
                               field="id")
    return key


def _locked_stock(warehouse: Warehouse, product: Product) -> StockLevel:
    stock, _created = StockLevel.objects.get_or_create(warehouse=warehouse, product=product)
    return StockLevel.objects.select_for_update().get(pk=stock.pk)


def _move(actor: Any, stock: StockLevel, kind: str, change: Decimal, *, key: str | None,
          note: str) -> StockMovement:
    before = {"on_hand": stock.on_hand}
    stock.on_hand += change
    stock.save(update_fields=["on_hand", "updated_at"])
    movement = StockMovement.objects.create(
        stock=stock, kind=kind, quantity=change, on_hand_after=stock.on_hand, key=key,
        note=(note or "")[:255], actor=employee_of(actor) if actor is not None else None,
    )
    audit.record(actor, f"stock.{kind}", stock, before=before,
                 after={"on_hand": stock.on_hand, "movement": movement.pk, "key": key})
    emit("stock.adjusted", stock, actor=actor, kind=kind, warehouse_id=stock.warehouse_id,
         product_id=stock.product_id, change=change, on_hand=stock.on_hand)
    return movement


def _goods(product: Product) -> None:
    if uses_capacity(product):
        raise ValidationFailed(
            _("%(code)s is a service: it has capacity per month, not stock.")
            % {"code": product.code}, field="product")


@transaction.atomic
def receive_stock(*, actor: Any, warehouse: Warehouse, product: Product, quantity: Any,
                  note: str = "", key: Any = None) -> StockMovement:
    """Goods arrived: on hand rises by `quantity` (above zero). A repeat with the same sender's
    `key` returns the first movement and changes nothing."""
    require(actor, MANAGE)
    key = _key(key)
    if key and (done := StockMovement.objects.filter(key=key).first()) is not None:
        return done
    _goods(product)
    quantity = check_quantity(quantity)
    return _move(actor, _locked_stock(warehouse, product), MovementKind.RECEIVE, quantity,
                 key=key, note=note)


@transaction.atomic
def count_stock(*, actor: Any, warehouse: Warehouse, product: Product, on_hand: Any,
                note: str = "", key: Any = None) -> StockMovement:
    """A stock count: on hand becomes `on_hand` (zero or more); the ledger keeps the
    difference. A repeat with the same sender's `key` changes nothing."""
    require(actor, MANAGE)
    key = _key(key)
    if key and (done := StockMovement.objects.filter(key=key).first()) is not None:
        return done
    _goods(product)
    try:
        counted = check_quantity(on_hand, field="on_hand", allow_zero=True)
    except ValidationFailed:
        raise ValidationFailed(
            _("Stock on hand cannot be negative: count what is there (zero or more)."),
            code="negative_stock", field="on_hand") from None
    stock = _locked_stock(warehouse, product)
    return _move(actor, stock, MovementKind.COUNT, counted - stock.on_hand, key=key, note=note)


@transaction.atomic
def apply_stock_update(
    *, actor: Any, key: Any, warehouse_code: str, product_code: str, on_hand: Any = None,
    received: Any = None, note: str = "",
) -> tuple[StockMovement, bool]:
    """An ERP/WMS message: either a count (`on_hand`) or goods received (`received`), named by
    codes. Returns (movement, created); the sender's `key` makes a repeat change nothing."""
    require(actor, MANAGE)
    key = _key(key, limit=120)
    if not key:
        raise ValidationFailed(_("Send your own id for this update, so a repeat changes "
                                 "nothing."), field="id")
    namespaced = f"api:{key}"  # at most 124 characters: the ledger's key holds 128
    done = StockMovement.objects.filter(key=namespaced).first()
    if done is not None:
        return done, False
    if (on_hand is None) == (received is None):
        raise ValidationFailed(_("Send either on_hand (a count) or received (goods that "
                                 "arrived), not both and not neither."), field="on_hand")
    warehouse = Warehouse.objects.filter(code=(warehouse_code or "").strip()).first()
    if warehouse is None:
        raise ValidationFailed(_("There is no warehouse with code %(code)s.")
                               % {"code": warehouse_code}, code="unknown_warehouse",
                               field="warehouse")
    product = Product.objects.filter(code=(product_code or "").strip()).first()
    if product is None:
        raise ValidationFailed(_("There is no product with code %(code)s.")
                               % {"code": product_code}, code="unknown_product", field="product")
    if on_hand is not None:
        movement = count_stock(actor=actor, warehouse=warehouse, product=product,
                               on_hand=on_hand, note=note, key=namespaced)
    else:
        movement = receive_stock(actor=actor, warehouse=warehouse, product=product,
                                 quantity=received, note=note, key=namespaced)
    return movement, True


# --- Reservations ---------------------------------------------------------------------------
def _parts(product: Product, quantity: Decimal) -> list[tuple[Product, Decimal]]:
    """What a line of `quantity` × `product` draws on: the product, or a bundle's components."""
    inside = components(product)
    if not inside:
        return [(product, quantity)]
    return [(component, quantity * per) for component, per in inside]


def _place_goods(product: Product) -> StockLevel | None:
    """The stock row with the most free goods (on hand − reserved), locked; None when the
    product is not stocked anywhere."""
    rows = list(StockLevel.objects.select_for_update().filter(
        product=product, warehouse__is_active=True).select_related("warehouse"))
    if not rows:
        return None
    return max(rows, key=lambda s: (s.free, [-ord(c) for c in s.warehouse.code]))


def _place_capacity(product: Product, day: dt.date) -> CapacityPeriod | None:
    if not CapacityPeriod.objects.filter(product=product).exists():
        return None
    period, _created = CapacityPeriod.objects.get_or_create(
        product=product, year=day.year, month=day.month)
    return CapacityPeriod.objects.select_for_update().get(pk=period.pk)


@transaction.atomic
def reserve_contract(contract: Any) -> list[Reservation]:
    """On signing: each line's quantity (a bundle's components) is reserved — goods in the
    warehouse with the most free stock, services in the capacity of the contract's start month
    (or the signing month). Never refused: what is short shows as a shortfall."""
    # Limitation: a product becomes tracked when stock or capacity is first recorded; contracts
    # signed before that hold nothing, and are not reserved afterwards.
    day = contract.start_on or contract.signed_on
    made = []
    for line in contract.lines.select_related("product").order_by("pk"):
        for product, quantity in _parts(line.product, line.quantity):
            if Reservation.objects.filter(contract_line=line, product=product).exists():
                continue
            place: StockLevel | CapacityPeriod | None
            if uses_capacity(product):
                place = _place_capacity(product, day) if day else None
            else:
                place = _place_goods(product)
            if place is None:
                continue  # untracked: nothing to hold
            place.reserved += quantity
            place.save(update_fields=["reserved", "updated_at"])
            made.append(Reservation.objects.create(
                contract_line=line, product=product, quantity=quantity,
                stock=place if isinstance(place, StockLevel) else None,
                capacity=place if isinstance(place, CapacityPeriod) else None,
            ))
    if made:
        audit.record(None, "stock.reserve", contract,
                     after={"reservations": [r.pk for r in made]})
        emit("stock.reserved", contract, contract_id=contract.pk,
             reservations=[{"id": r.pk, "product_id": r.product_id, "quantity": r.quantity,
                            "stock_id": r.stock_id, "capacity_id": r.capacity_id}
                           for r in made])
    return made


def _lock_place(reservation: Reservation) -> StockLevel | CapacityPeriod:
    if reservation.stock_id:
        return StockLevel.objects.select_for_update().get(pk=reservation.stock_id)
    return CapacityPeriod.objects.select_for_update().get(pk=reservation.capacity_id)


@transaction.atomic
def release_contract(contract: Any) -> list[Reservation]:
    """On cancellation: what the contract still holds (reserved, not yet issued) is given
    back, exactly; released or issued reservations stay as they are."""
    released = []
    open_rows = Reservation.objects.select_for_update().filter(
        contract_line__contract=contract, status=ReservationStatus.RESERVED).order_by("pk")
    for reservation in open_rows:
        place = _lock_place(reservation)
        give_back = reservation.quantity - reservation.issued
        place.reserved = max(place.reserved - give_back, ZERO)
        place.save(update_fields=["reserved", "updated_at"])
        reservation.status = ReservationStatus.RELEASED
        reservation.save(update_fields=["status", "updated_at"])
        released.append(reservation)
    if released:
        audit.record(None, "stock.release", contract,
                     after={"reservations": [r.pk for r in released]})
        emit("stock.released", contract, contract_id=contract.pk,
             reservations=[{"id": r.pk, "product_id": r.product_id,
                            "quantity": r.quantity - r.issued} for r in released])
    return released


@transaction.atomic
def issue_shipment(*, order_id: Any, warehouse_id: Any, lines: list[dict[str, Any]]) -> int:
    """A delivery order shipped: goods leave the warehouse (on hand and reserved both drop);
    a service's reservation is marked delivered. Each (order, line, product) is issued once,
    so a replayed event changes nothing. Returns how many ledger rows were written."""
    from weiying.pipeline.models import ContractLine

    written = 0
    for raw in lines:
        line = ContractLine.objects.select_related("product").filter(
            pk=int(raw["contract_line_id"])).first()
        if line is None:
            logger.warning("shipped line not found", extra={"line": raw.get("contract_line_id")})
            continue
        product = line.product if not raw.get("product_id") else (
            Product.objects.filter(pk=int(raw["product_id"])).first() or line.product)
        quantity = Decimal(str(raw["quantity"]))
        for part, qty in _parts(product, quantity):
            key = f"ship:{order_id}:{line.pk}:{part.pk}"
            if StockMovement.objects.filter(key=key).exists():
                continue
            reservation = Reservation.objects.select_for_update().filter(
                contract_line=line, product=part).first()
            written += _issue(part, qty, key, reservation, warehouse_id)
    return written


def _issue(product: Product, qty: Decimal, key: str, reservation: Reservation | None,
           warehouse_id: Any) -> int:
    held = ZERO
    if reservation is not None and reservation.status == ReservationStatus.RESERVED:
        held = min(qty, reservation.quantity - reservation.issued)
        reservation.issued += held
        if reservation.issued >= reservation.quantity:
            reservation.status = ReservationStatus.ISSUED
        reservation.save(update_fields=["issued", "status", "updated_at"])
    if uses_capacity(product):
        # Delivered capacity stays booked for its month; there is no stock to move.
        return 0
    stock = None
    if warehouse_id:
        warehouse = Warehouse.objects.filter(pk=int(warehouse_id)).first()
        stock = _locked_stock(warehouse, product) if warehouse else None
    if stock is None and reservation is not None and reservation.stock_id:
        stock = StockLevel.objects.select_for_update().get(pk=reservation.stock_id)
    if stock is None:
        return 0  # untracked goods: nothing on the books to move
    if held:
        holder = stock if reservation.stock_id in (None, stock.pk) else \
            StockLevel.objects.select_for_update().get(pk=reservation.stock_id)
        holder.reserved = max(holder.reserved - held, ZERO)
        holder.save(update_fields=["reserved", "updated_at"])
        if holder.pk == stock.pk:
            stock.reserved = holder.reserved
    change = -qty
    if stock.on_hand + change < 0:
        # Limitation: the goods left although the books say there were fewer; on hand stops
        # at zero and the ledger notes it, until the next count corrects the books.
        logger.warning("shipped more than on hand", extra={"stock_id": stock.pk, "key": key})
        change = -stock.on_hand
    _move(None, stock, MovementKind.ISSUE, change, key=key,
          note=_("Shipped %(quantity)s") % {"quantity": qty.normalize()})
    return 1
