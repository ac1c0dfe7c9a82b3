"""Reads of the catalogue. Products are company-wide reference data, not owned rows, so they
carry no data-scope rule: every signed-in employee may read the list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.catalog.models import CapacityPeriod, PriceList, PriceListItem, Product, StockLevel
from weiying.core.errors import NotFound
from weiying.core.scope import data_scope_of
from weiying.org.choices import DataScope


def products_for(
    user: Any, *, active: bool | None = True, search: str = "", category: str = "",
) -> QuerySet[Product]:
    if data_scope_of(user) == DataScope.NONE:
        return Product.objects.none()
    qs = Product.objects.all()
    if active is not None:
        qs = qs.filter(is_active=active)
    if search:
        qs = qs.filter(Q(code__icontains=search) | Q(name__icontains=search))
    if category:
        qs = qs.filter(category=category)
    return qs


def product_detail(user: Any, pk: int) -> Product:
    product = products_for(user, active=None).filter(pk=pk).first()
    if product is None:
        raise NotFound()
    return product


# --- Prices ---------------------------------------------------------------------------------
def price_lists_for(user: Any, *, active: bool | None = None) -> QuerySet[PriceList]:
    """Price lists are company-wide reference data, like products."""
    if data_scope_of(user) == DataScope.NONE:
        return PriceList.objects.none()
    qs = PriceList.objects.all()
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs


def price_for(product: Product, customer: Any, on: dt.date | None = None
              ) -> tuple[Decimal, PriceList | None]:
    """The unit price (VAT incl.) `customer` pays for `product` on `on` (default today), and
    the price list it comes from; the list price and None when no list applies.

    Candidates are active lists valid on the day whose channel is empty or the customer's
    channel or source, and whose level is empty or the customer's level. The most specific
    wins (channel and level set beats one of them beats neither), then the higher priority;
    a list that names the customer's own channel beats one that matches its source.
    Services refuse lists that would tie (weiying.catalog.services.check_price_list_overlap);
    a remaining tie goes to the newest list."""
    on = on or timezone.localdate()
    if customer is None:
        return product.list_price, None
    channels = {c for c in (getattr(customer, "channel", ""), getattr(customer, "source", ""))
                if c}
    level = getattr(customer, "level", "") or ""
    items = (
        PriceListItem.objects.filter(
            product_id=product.pk, price_list__is_active=True,
            price_list__valid_from__lte=on,
        )
        .filter(Q(price_list__valid_until__isnull=True) | Q(price_list__valid_until__gte=on))
        .filter(Q(price_list__channel="") | Q(price_list__channel__in=channels))
        .filter(Q(price_list__customer_level="") | Q(price_list__customer_level=level))
        .select_related("price_list")
    )
    own_channel = getattr(customer, "channel", "")

    def rank(item: PriceListItem) -> tuple[int, int, int, int]:
        pl = item.price_list
        return (pl.specificity, pl.priority, int(bool(own_channel) and pl.channel == own_channel),
                pl.pk)

    best = max(items, key=rank, default=None)
    if best is None:
        return product.list_price, None
    return best.price, best.price_list


# --- Availability ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Availability:
    """What can be delivered of `product`: `available` is None for an untracked product
    (never short); `warning` is empty when `quantity` can be delivered."""

    product: Product
    quantity: Decimal
    available: Decimal | None
    warning: str = ""

    @property
    def short(self) -> bool:
        return bool(self.warning)


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _free(product: Product, on: dt.date) -> Decimal | None:
    from weiying.catalog.stock_services import uses_capacity

    if uses_capacity(product):
        periods = CapacityPeriod.objects.filter(product_id=product.pk)
        if not periods.exists():
            return None
        period = periods.filter(year=on.year, month=on.month).first()
        return period.free if period else Decimal(0)
    # Limitation: free stock is summed over every warehouse, while signing reserves a line in
    # the one warehouse with most free; a line larger than any one warehouse's free stock is
    # shown as deliverable and later ships from several (or shows short there).
    rows = StockLevel.objects.filter(product_id=product.pk, warehouse__is_active=True)
    if not rows.exists():
        return None
    return rows.aggregate(free=Sum(F("on_hand") - F("reserved")))["free"] or Decimal(0)


def availability(product: Product, quantity: Any, on: dt.date | None = None) -> Availability:
    """Whether `quantity` of `product` can be delivered: goods from the free stock of every
    warehouse (on hand − reserved), services from the free capacity of the month of `on`
    (default today), a bundle from its components (as many whole bundles as the scarcest
    allows)."""
    from weiying.catalog.bundles import components
    from weiying.catalog.stock_services import uses_capacity

    on = on or timezone.localdate()
    quantity = Decimal(str(quantity))
    inside = components(product)
    if inside:
        counts, warnings = [], []
        for component, per in inside:
            part = availability(component, quantity * per, on)
            if part.available is not None:
                counts.append((max(part.available, Decimal(0)) / per).to_integral_value(
                    rounding="ROUND_FLOOR"))
            if part.warning:
                warnings.append(_("In bundle %(bundle)s: %(warning)s")
                                % {"bundle": product.name, "warning": part.warning})
        return Availability(product, quantity, min(counts) if counts else None,
                            " ".join(warnings))
    free = _free(product, on)
    if free is None or free >= quantity:
        return Availability(product, quantity, free)
    args = {"free": _qty(max(free, Decimal(0))), "unit": product.unit, "product": product.name,
            "quantity": _qty(quantity), "month": f"{on:%Y-%m}"}
    if uses_capacity(product):
        warning = _("Only %(free)s %(unit)s of %(product)s are free in %(month)s and "
                    "%(quantity)s are asked: the rest cannot be delivered that month.") % args
    else:
        warning = _("Only %(free)s %(unit)s of %(product)s are free in stock and %(quantity)s "
                    "are asked: the rest cannot be delivered now.") % args
    return Availability(product, quantity, free, warning)


def line_warnings(lines: Any, on: dt.date | None = None) -> list[str]:
    """The availability warnings of quote or contract lines, adding up lines of the same
    product (two lines of 5 need 10)."""
    wanted: dict[int, tuple[Product, Decimal]] = {}
    for line in lines:
        product, qty = line.product, Decimal(str(line.quantity))
        held = wanted.get(product.pk)
        wanted[product.pk] = (product, qty + (held[1] if held else Decimal(0)))
    out = []
    for product, qty in wanted.values():
        found = availability(product, qty, on)
        if found.warning:
            out.append(found.warning)
    return out


# Statuses in which a quote or contract still promises (nothing reserved yet).
_OPEN = {"draft", "pending_approval", "approved", "sent", "accepted"}
_CONTRACT_OPEN = {"draft", "pending_approval", "approved"}


def warnings_for(obj: Any) -> list[str]:
    """The availability warnings of a quote or a contract while it still promises (before
    signing, when nothing is reserved for it yet); none afterwards."""
    is_contract = hasattr(obj, "signed_on")
    if obj.status not in (_CONTRACT_OPEN if is_contract else _OPEN):
        return []
    on = (getattr(obj, "start_on", None) if is_contract else None) or timezone.localdate()
    return line_warnings(obj.lines.select_related("product"), on)


def line_price(product: Product, customer: Any = None, *, sku: Any = None,
               on: dt.date | None = None) -> Decimal:
    """The default unit price of a quote or contract line: the customer's price list price,
    else the SKU's list price, else the product's."""
    if customer is not None:
        price, price_list = price_for(product, customer, on)
        if price_list is not None:
            return price
    if sku is not None:
        return sku.price
    return product.list_price
