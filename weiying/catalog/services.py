"""Changes to the catalogue: products and their prices and VAT rates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from weiying.catalog.models import Product
from weiying.core import audit
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.money import money, to_decimal
from weiying.core.permissions import require

# The VAT rates Chinese invoices use today. Rates are data: extend this tuple, not the code.
VAT_RATES: tuple[Decimal, ...] = tuple(
    Decimal(r) for r in ("0", "0.01", "0.03", "0.06", "0.09", "0.13")
)

_EDITABLE = ("name", "category", "unit", "list_price", "vat_rate", "lifecycle_days")


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


def _price(value: Any) -> Decimal:
    try:
        price = to_decimal(value)
    except (TypeError, ValueError):
        price = None
    if price is None or not price.is_finite() or price < 0 or money(price) != price:
        raise ValidationFailed(
            _("The list price must be an amount of zero or more, in yuan and fen."),
            field="list_price",
        )
    return price


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
    return out


@transaction.atomic
def create_product(
    *, actor: Any, code: str, name: str, list_price: Any, vat_rate: Any = "0.13",
    category: str = "", unit: str = "件", lifecycle_days: int | None = None,
) -> Product:
    require(actor, "settings.manage")
    code = (code or "").strip()
    if not code:
        raise ValidationFailed(_("A product needs a code."), field="code")
    if Product.objects.filter(code=code).exists():
        raise Conflict(
            _("Product code %(code)s is already used; pick another.") % {"code": code},
            code="duplicate_product_code", field="code",
        )
    fields = _clean({"name": name, "list_price": list_price, "vat_rate": vat_rate,
                     "category": category, "unit": unit, "lifecycle_days": lifecycle_days})
    product = Product.objects.create(code=code, **fields)
    audit.record(actor, "product.create", product, after=audit.snapshot(product))
    return product


@transaction.atomic
def update_product(*, actor: Any, product: Product, **fields: Any) -> Product:
    """Change any of name, category, unit, list_price, vat_rate, lifecycle_days. Lines
    already on quotes and contracts keep the price and rate they were written with."""
    require(actor, "settings.manage")
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
    require(actor, "settings.manage")
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
