"""What the catalogue sells beyond a bare product: SKUs (specifications of one product), price
lists by channel or customer tier with validity dates, and bundles.

The models live here and are imported into weiying.catalog.models, so they belong to the
catalog app. Every change goes through weiying.catalog.services.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import MONEY_FIELD, QUANTITY_FIELD


# Limitation: the desk's quote and contract line form has no SKU picker; a line names a SKU
# through the API (sku_id) or the services, and the desk lines name the product only.
class Sku(models.Model):
    """One specification of a product (colour, size, edition). Empty prices mean the
    product's own."""

    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="skus",
                                verbose_name=_("product"))
    code = models.CharField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("specification"), max_length=128)
    list_price = models.DecimalField(_("list price (VAT incl.)"), null=True, blank=True,
                                     **MONEY_FIELD)
    standard_cost = models.DecimalField(_("standard cost (VAT excl.)"), null=True, blank=True,
                                        **MONEY_FIELD)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def price(self) -> Decimal:
        return self.product.list_price if self.list_price is None else self.list_price

    @property
    def cost(self) -> Decimal:
        return self.product.standard_cost if self.standard_cost is None else self.standard_cost


class PriceList(models.Model):
    """Prices for some customers over some dates. An empty channel or level means any; a
    channel matches the customer's channel or its source. The most specific valid list with
    an item for the product wins, then the higher priority (weiying.catalog.selectors
    .price_for)."""

    name = models.CharField(_("name"), max_length=128)
    channel = models.CharField(_("channel"), max_length=64, blank=True,
                               help_text=_("A customer channel or source; empty for any."))
    customer_level = models.CharField(_("customer level"), max_length=1, blank=True,
                                      help_text=_("A, B or C; empty for any."))
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True,
                                   help_text=_("Empty: no end."))
    priority = models.SmallIntegerField(_("priority"), default=0,
                                        help_text=_("Higher wins among equally specific lists."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("price list")
        verbose_name_plural = _("price lists")
        ordering = ["-valid_from", "name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def specificity(self) -> int:
        return int(bool(self.channel)) + int(bool(self.customer_level))


class PriceListItem(models.Model):
    """One product's price (VAT incl., per unit) on a price list."""

    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="items",
                                   verbose_name=_("price list"))
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("product"))
    price = models.DecimalField(_("price (VAT incl.)"), **MONEY_FIELD)

    class Meta:
        verbose_name = _("price list item")
        verbose_name_plural = _("price list items")
        constraints = [models.UniqueConstraint(fields=["price_list", "product"],
                                               name="pricelist_item_once")]

    def __str__(self) -> str:
        return f"{self.price_list_id}: {self.product_id} {self.price}"


class BundleItem(models.Model):
    """A component of a bundle: a bundle is a product that has items. A component is never a
    bundle itself (no nesting), nor the bundle."""

    bundle = models.ForeignKey("catalog.Product", on_delete=models.CASCADE,
                               related_name="bundle_items", verbose_name=_("bundle"))
    component = models.ForeignKey("catalog.Product", on_delete=models.PROTECT,
                                  related_name="in_bundles", verbose_name=_("component"))
    quantity = models.DecimalField(_("quantity"), **QUANTITY_FIELD)

    class Meta:
        verbose_name = _("bundle item")
        verbose_name_plural = _("bundle items")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "component"], name="bundle_component_once"),
            models.CheckConstraint(condition=~models.Q(bundle=models.F("component")),
                                   name="bundle_not_itself"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0),
                                   name="bundle_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id} ⊃ {self.component_id} × {self.quantity}"
