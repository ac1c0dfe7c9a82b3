"""Changes to the catalogue: products, their prices and VAT rates, SKUs, bundles and price
lists. Stock and capacity change in weiying.catalog.stock_services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from weiying.catalog.models import (
    BundleItem,
    Fulfilment,
    PriceList,
    PriceListItem,
    Product,
    Sku,
)
from weiying.core import audit
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.money import MONEY_FIELD, money, to_decimal
from weiying.core.permissions import require

# The VAT rates Chinese invoices use today. Rates are data: extend this tuple, not the code.
VAT_RATES: tuple[Decimal, ...] = tuple(
    Decimal(r) for r in ("0", "0.01", "0.03", "0.06", "0.09", "0.13")
)

_EDITABLE = ("name", "category", "unit", "list_price", "vat_rate", "lifecycle_days",
             "standard_cost", "standalone_price", "fulfilment", "service_months")
# Who edits the catalogue, price lists, stock and capacity: operations and administrators.
MANAGE = "catalog.manage"
QUANTUM_QTY = Decimal("0.001")


def check_vat_rate(value: Any, *, field: str = "vat_rate") -> Decimal:
    """The rate as a Decimal if it is one of VAT_RATES; a ValidationFailed otherwise."""
    try:
        rate = to_decimal(value)
    except (TypeError, ValueError):
        rate = None
    if rate is None or rate not in VAT_RATES:
        raise ValidationFailed(
            _("%(rate)s is not a VAT rate; use one of 0, 0.01, 0.03, 0.06, 0.09 or 0.13.")
            % {"rate": value},
            code="invalid_vat_rate", field=field,
        )
    return rate


def _amount(value: Any) -> Decimal | None:
    try:
        amount = to_decimal(value)
    except (TypeError, ValueError):
        return None
    if not amount.is_finite() or amount < 0 or money(amount) != amount:
        return None
    if amount >= Decimal(10) ** (MONEY_FIELD["max_digits"] - MONEY_FIELD["decimal_places"]):
        return None
    return amount


def _price(value: Any, field: str = "list_price") -> Decimal:
    price = _amount(value)
    if price is None:
        raise ValidationFailed(
            _("The list price must be an amount of zero or more, in yuan and fen."),
            field=field,
        )
    return price


def _optional_amount(value: Any, field: str, message: str) -> Decimal | None:
    if value in (None, ""):
        return None
    amount = _amount(value)
    if amount is None:
        raise ValidationFailed(message, field=field)
    return amount


def check_quantity(value: Any, *, field: str = "quantity",
                   allow_zero: bool = False) -> Decimal:
    """A quantity above zero (or zero when allowed) with at most three decimals."""
    try:
        qty = to_decimal(value)
    except (TypeError, ValueError):
        qty = None
    ok = qty is not None and qty.is_finite() and qty == qty.quantize(QUANTUM_QTY) and (
        qty >= 0 if allow_zero else qty > 0) and qty < Decimal(10) ** 11
    if not ok:
        message = (_("The quantity must be a number of zero or more, with at most three "
                     "decimals.") if allow_zero else
                   _("The quantity must be a number above zero, with at most three decimals."))
        raise ValidationFailed(message, field=field)
    return qty  # type: ignore[return-value]


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()
        if not out["name"]:
            raise ValidationFailed(_("A product needs a name."), field="name")
    if "list_price" in out:
        out["list_price"] = _price(out["list_price"])
    if "vat_rate" in out:
        out["vat_rate"] = check_vat_rate(out["vat_rate"])
    if out.get("lifecycle_days") is not None and int(out["lifecycle_days"]) <= 0:
        raise ValidationFailed(
            _("The repurchase cycle is a number of days above zero; leave it empty if none."),
            field="lifecycle_days",
        )
    if "unit" in out:
        out["unit"] = (out["unit"] or "").strip() or "件"
    if "standard_cost" in out:
        out["standard_cost"] = _optional_amount(
            out["standard_cost"], "standard_cost",
            _("The standard cost must be an amount of zero or more, in yuan and fen.")
        ) or Decimal("0.00")
    if "standalone_price" in out:
        out["standalone_price"] = _optional_amount(
            out["standalone_price"], "standalone_price",
            _("The standalone selling price must be an amount of zero or more, in yuan and "
              "fen; leave it empty to use the list price."))
    if "fulfilment" in out and out["fulfilment"] not in Fulfilment.values:
        raise ValidationFailed(
            _("Fulfilment is one of goods, service or milestone."), field="fulfilment")
    if out.get("service_months") in ("",):
        out["service_months"] = None
    if out.get("service_months") is not None:
        try:
            months = int(out["service_months"])
        except (TypeError, ValueError):
            months = 0
        if not 0 < months <= 600:
            raise ValidationFailed(
                _("Service months is a number of months from 1 to 600; leave it empty if "
                  "none."), field="service_months")
        out["service_months"] = months
    return out


@transaction.atomic
def create_product(
    *, actor: Any, code: str, name: str, list_price: Any, vat_rate: Any = "0.13",
    category: str = "", unit: str = "件", lifecycle_days: int | None = None,
    standard_cost: Any = "0", standalone_price: Any = None,
    fulfilment: str = Fulfilment.GOODS, service_months: int | None = None,
) -> Product:
    require(actor, MANAGE)
    code = (code or "").strip()
    if not code:
        raise ValidationFailed(_("A product needs a code."), field="code")
    if Product.objects.filter(code=code).exists():
        raise Conflict(
            _("Product code %(code)s is already used; pick another.") % {"code": code},
            code="duplicate_product_code", field="code",
        )
    fields = _clean({"name": name, "list_price": list_price, "vat_rate": vat_rate,
                     "category": category, "unit": unit, "lifecycle_days": lifecycle_days,
                     "standard_cost": standard_cost, "standalone_price": standalone_price,
                     "fulfilment": fulfilment, "service_months": service_months})
    product = Product.objects.create(code=code, **fields)
    audit.record(actor, "product.create", product, after=audit.snapshot(product))
    return product


@transaction.atomic
def update_product(*, actor: Any, product: Product, **fields: Any) -> Product:
    """Change any of name, category, unit, list_price, vat_rate, lifecycle_days,
    standard_cost, standalone_price, fulfilment, service_months. Lines already on quotes and
    contracts keep the price and rate they were written with."""
    require(actor, MANAGE)
    unknown = sorted(set(fields) - set(_EDITABLE))
    if unknown:
        raise ValidationFailed(
            _("These product fields cannot be changed here: %(fields)s.")
            % {"fields": ", ".join(unknown)},
        )
    cleaned = _clean(fields)
    before = audit.snapshot(product, list(_EDITABLE))
    for name, value in cleaned.items():
        setattr(product, name, value)
    product.save(update_fields=list(cleaned) or None)
    audit.record(actor, "product.update", product,
                 before=before, after=audit.snapshot(product, list(_EDITABLE)))
    return product


@transaction.atomic
def retire_product(*, actor: Any, product: Product) -> Product:
    """Take a product off sale: it stays on existing lines but cannot be added to new ones."""
    require(actor, MANAGE)
    if not product.is_active:
        raise Conflict(
            _("Product %(code)s is already retired.") % {"code": product.code},
            code="product_retired",
        )
    Product.objects.filter(pk=product.pk).update(is_active=False)
    product.is_active = False
    audit.record(actor, "product.retire", product,
                 before={"is_active": True}, after={"is_active": False})
    return product


# --- SKUs -----------------------------------------------------------------------------------
_SKU_EDITABLE = ("name", "list_price", "standard_cost")


def _clean_sku(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()[:128]
        if not out["name"]:
            raise ValidationFailed(_("A SKU needs a specification, e.g. its colour or size."),
                                   field="name")
    if "list_price" in out:
        out["list_price"] = _optional_amount(
            out["list_price"], "list_price",
            _("The SKU's list price must be an amount of zero or more, in yuan and fen; leave "
              "it empty to use the product's."))
    if "standard_cost" in out:
        out["standard_cost"] = _optional_amount(
            out["standard_cost"], "standard_cost",
            _("The SKU's standard cost must be an amount of zero or more, in yuan and fen; "
              "leave it empty to use the product's."))
    return out


@transaction.atomic
def create_sku(*, actor: Any, product: Product, code: str, name: str, list_price: Any = None,
               standard_cost: Any = None) -> Sku:
    require(actor, MANAGE)
    code = (code or "").strip()
    if not code or len(code) > 64:
        raise ValidationFailed(_("A SKU needs a code of at most 64 characters."), field="code")
    if Sku.objects.filter(code=code).exists():
        raise Conflict(_("SKU code %(code)s is already used; pick another.") % {"code": code},
                       code="duplicate_sku_code", field="code")
    if not product.is_active:
        raise Conflict(_("Product %(code)s is retired; it takes no new SKUs.")
                       % {"code": product.code}, code="product_retired")
    fields = _clean_sku({"name": name, "list_price": list_price,
                         "standard_cost": standard_cost})
    sku = Sku.objects.create(product=product, code=code, **fields)
    audit.record(actor, "sku.create", sku, after=audit.snapshot(sku))
    return sku


@transaction.atomic
def update_sku(*, actor: Any, sku: Sku, **fields: Any) -> Sku:
    """Change the specification or the override prices (empty: the product's)."""
    require(actor, MANAGE)
    unknown = sorted(set(fields) - set(_SKU_EDITABLE))
    if unknown:
        raise ValidationFailed(_("These SKU fields cannot be changed here: %(fields)s.")
                               % {"fields": ", ".join(unknown)})
    cleaned = _clean_sku(fields)
    before = audit.snapshot(sku, list(_SKU_EDITABLE))
    for name, value in cleaned.items():
        setattr(sku, name, value)
    sku.save()
    audit.record(actor, "sku.update", sku, before=before,
                 after=audit.snapshot(sku, list(_SKU_EDITABLE)))
    return sku


@transaction.atomic
def retire_sku(*, actor: Any, sku: Sku) -> Sku:
    require(actor, MANAGE)
    if not sku.is_active:
        raise Conflict(_("SKU %(code)s is already retired.") % {"code": sku.code},
                       code="sku_retired")
    Sku.objects.filter(pk=sku.pk).update(is_active=False)
    sku.is_active = False
    audit.record(actor, "sku.retire", sku, before={"is_active": True},
                 after={"is_active": False})
    return sku


# --- Bundles --------------------------------------------------------------------------------
@transaction.atomic
def set_bundle_item(*, actor: Any, bundle: Product, component: Product,
                    quantity: Any) -> BundleItem:
    """Put `quantity` of `component` into `bundle` (or change how many). A bundle is a product
    that has items; a component may not be a bundle itself, nor the bundle."""
    require(actor, MANAGE)
    quantity = check_quantity(quantity)
    if component.pk == bundle.pk:
        raise ValidationFailed(_("A bundle cannot contain itself; pick another product."),
                               code="bundle_of_itself", field="component")
    if BundleItem.objects.filter(bundle=component).exists():
        raise ValidationFailed(
            _("%(code)s is a bundle itself; bundles do not nest. Add its components instead.")
            % {"code": component.code}, code="bundle_of_bundle", field="component")
    if BundleItem.objects.filter(component=bundle).exists():
        raise ValidationFailed(
            _("%(code)s is a component of another bundle, so it cannot become a bundle; take "
              "it out of that bundle first.") % {"code": bundle.code},
            code="bundle_of_bundle", field="bundle")
    item = BundleItem.objects.filter(bundle=bundle, component=component).first()
    before = {"quantity": item.quantity} if item else None
    if item is None:
        item = BundleItem.objects.create(bundle=bundle, component=component, quantity=quantity)
    else:
        item.quantity = quantity
        item.save(update_fields=["quantity"])
    audit.record(actor, "bundle.set_item", bundle, before=before,
                 after={"component": component.pk, "quantity": quantity})
    return item


@transaction.atomic
def remove_bundle_item(*, actor: Any, bundle: Product, component: Product) -> None:
    require(actor, MANAGE)
    item = BundleItem.objects.filter(bundle=bundle, component=component).first()
    if item is None:
        raise ValidationFailed(_("%(code)s is not in this bundle.") % {"code": component.code},
                               field="component")
    item.delete()
    audit.record(actor, "bundle.remove_item", bundle,
                 before={"component": component.pk, "quantity": item.quantity})


# --- Price lists ----------------------------------------------------------------------------
_PRICE_LIST_EDITABLE = ("name", "channel", "customer_level", "valid_from", "valid_until",
                        "priority", "is_active")
LEVELS = ("A", "B", "C")


def _date(value: Any, field: str) -> Any:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(_("Give the date as YYYY-MM-DD."), field=field) from None


def _clean_price_list(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()[:128]
        if not out["name"]:
            raise ValidationFailed(_("A price list needs a name."), field="name")
    if "channel" in out:
        out["channel"] = (out["channel"] or "").strip()[:64]
    if "customer_level" in out:
        out["customer_level"] = (out["customer_level"] or "").strip().upper()
        if out["customer_level"] and out["customer_level"] not in LEVELS:
            raise ValidationFailed(_("The customer level is A, B or C; leave it empty for any."),
                                   field="customer_level")
    if "valid_from" in out:
        if out["valid_from"] in (None, ""):
            raise ValidationFailed(_("A price list needs the date it is valid from."),
                                   field="valid_from")
        out["valid_from"] = _date(out["valid_from"], "valid_from")
    if "valid_until" in out:
        out["valid_until"] = (None if out["valid_until"] in (None, "")
                              else _date(out["valid_until"], "valid_until"))
    if "priority" in out:
        try:
            out["priority"] = int(out["priority"] or 0)
        except (TypeError, ValueError):
            out["priority"] = None
        if out["priority"] is None or not -1000 <= out["priority"] <= 1000:
            raise ValidationFailed(_("The priority is a whole number from -1000 to 1000."),
                                   field="priority")
    if "is_active" in out:
        out["is_active"] = bool(out["is_active"])
    return out


def _overlaps(a: PriceList, b: PriceList) -> bool:
    """Could both lists apply to one customer on one day with the same rank?"""
    if a.specificity != b.specificity or a.priority != b.priority:
        return False
    for mine, theirs in ((a.channel, b.channel), (a.customer_level, b.customer_level)):
        if mine and theirs and mine != theirs:
            return False
    starts, ends = max(a.valid_from, b.valid_from), None
    for end in (a.valid_until, b.valid_until):
        if end is not None:
            ends = end if ends is None else min(ends, end)
    return ends is None or starts <= ends


def check_price_list_overlap(price_list: PriceList, products: Any = None) -> None:
    """Refuse when another active list of the same specificity and priority could price the
    same product for the same customer on the same day: which one wins would be chance."""
    if not price_list.is_active:
        return
    mine = set(products) if products is not None else set(
        price_list.items.values_list("product_id", flat=True))
    if not mine:
        return
    others = PriceList.objects.filter(is_active=True, priority=price_list.priority).exclude(
        pk=price_list.pk)
    for other in others:
        if not _overlaps(price_list, other):
            continue
        common = other.items.filter(product_id__in=mine).select_related("product").first()
        if common is not None:
            raise Conflict(
                _("Price list “%(other)s” already prices %(code)s for the same customers and "
                  "dates with the same priority, so neither would clearly win. Give one list "
                  "another priority, other dates, or a narrower channel or level.")
                % {"other": other.name, "code": common.product.code},
                code="price_list_overlap",
            )


def _check_dates(price_list: PriceList) -> None:
    if price_list.valid_until and price_list.valid_until < price_list.valid_from:
        raise ValidationFailed(_("A price list cannot end before it starts."),
                               field="valid_until")


@transaction.atomic
def create_price_list(
    *, actor: Any, name: str, valid_from: Any, valid_until: Any = None, channel: str = "",
    customer_level: str = "", priority: Any = 0, is_active: bool = True,
) -> PriceList:
    require(actor, MANAGE)
    fields = _clean_price_list({
        "name": name, "valid_from": valid_from, "valid_until": valid_until, "channel": channel,
        "customer_level": customer_level, "priority": priority, "is_active": is_active,
    })
    price_list = PriceList(**fields)
    _check_dates(price_list)
    price_list.save()
    audit.record(actor, "price_list.create", price_list, after=audit.snapshot(price_list))
    return price_list


@transaction.atomic
def update_price_list(*, actor: Any, price_list: PriceList, **fields: Any) -> PriceList:
    """Change any of name, channel, customer_level, valid_from, valid_until, priority,
    is_active; refused when the result would overlap another list (see
    check_price_list_overlap)."""
    require(actor, MANAGE)
    unknown = sorted(set(fields) - set(_PRICE_LIST_EDITABLE))
    if unknown:
        raise ValidationFailed(_("These price list fields cannot be changed here: %(fields)s.")
                               % {"fields": ", ".join(unknown)})
    cleaned = _clean_price_list(fields)
    before = audit.snapshot(price_list, list(_PRICE_LIST_EDITABLE))
    for name, value in cleaned.items():
        setattr(price_list, name, value)
    _check_dates(price_list)
    check_price_list_overlap(price_list)
    price_list.save()
    audit.record(actor, "price_list.update", price_list, before=before,
                 after=audit.snapshot(price_list, list(_PRICE_LIST_EDITABLE)))
    return price_list


@transaction.atomic
def set_price_list_item(*, actor: Any, price_list: PriceList, product: Product,
                        price: Any) -> PriceListItem:
    """Price `product` on `price_list` (or change its price)."""
    require(actor, MANAGE)
    price = _price(price, "price")
    check_price_list_overlap(price_list, [product.pk])
    item = PriceListItem.objects.filter(price_list=price_list, product=product).first()
    before = {"product": product.pk, "price": item.price} if item else None
    if item is None:
        item = PriceListItem.objects.create(price_list=price_list, product=product, price=price)
    else:
        item.price = price
        item.save(update_fields=["price"])
    audit.record(actor, "price_list.set_item", price_list, before=before,
                 after={"product": product.pk, "price": price})
    return item


@transaction.atomic
def remove_price_list_item(*, actor: Any, price_list: PriceList, product: Product) -> None:
    require(actor, MANAGE)
    item = PriceListItem.objects.filter(price_list=price_list, product=product).first()
    if item is None:
        raise ValidationFailed(_("%(code)s is not on this price list.") % {"code": product.code},
                               field="product")
    item.delete()
    audit.record(actor, "price_list.remove_item", price_list,
                 before={"product": product.pk, "price": item.price})
