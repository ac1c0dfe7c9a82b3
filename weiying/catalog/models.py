from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import MONEY_FIELD, RATE_FIELD


class Fulfilment(models.TextChoices):
    """How a product is delivered, which decides when its revenue is recognised."""

    GOODS = "goods", _("Goods, accepted at delivery")
    SERVICE = "service", _("Service over a period")
    MILESTONE = "milestone", _("Milestone accepted by the customer")


class Product(models.Model):
    """Something the company sells. `standalone_price` (单独售价, VAT incl., per unit) is what
    the finance layer allocates a discounted bundle by; `standard_cost` (per unit, VAT excl.)
    is booked to cost of sales when revenue is recognised."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=128)
    category = models.CharField(_("category"), max_length=64, blank=True)
    unit = models.CharField(_("unit"), max_length=16, default="件")
    list_price = models.DecimalField(_("list price (VAT incl.)"), **MONEY_FIELD)
    vat_rate = models.DecimalField(_("VAT rate"), default=Decimal("0.13"), **RATE_FIELD)
    standard_cost = models.DecimalField(_("standard cost (VAT excl.)"), default=0,
                                        **MONEY_FIELD)
    standalone_price = models.DecimalField(
        _("standalone selling price (VAT incl.)"), null=True, blank=True, **MONEY_FIELD,
        help_text=_("What the product sells for on its own; empty means the list price."),
    )
    fulfilment = models.CharField(_("fulfilment"), max_length=16, choices=Fulfilment.choices,
                                  default=Fulfilment.GOODS)
    service_months = models.PositiveSmallIntegerField(
        _("service months"), null=True, blank=True,
        help_text=_("For a service: how many months one unit runs when the contract gives "
                    "no dates."),
    )
    lifecycle_days = models.PositiveIntegerField(
        _("repurchase cycle (days)"), null=True, blank=True,
        help_text=_("After how many days a customer usually buys again; empty if never."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def ssp(self) -> Decimal:
        return self.list_price if self.standalone_price is None else self.standalone_price


# SKUs, price lists, bundles, stock and capacity live in their own modules; imported here so
# they belong to this app.
from weiying.catalog.catalogue import BundleItem, PriceList, PriceListItem, Sku  # noqa: E402, F401, I001
from weiying.catalog.stock import (  # noqa: E402, F401
    CapacityPeriod,
    Reservation,
    StockLevel,
    StockMovement,
    Warehouse,
)
# Delivery orders too (weiying.catalog.delivery).
from weiying.catalog.delivery import DeliveryLine, DeliveryOrder  # noqa: E402, F401, I001
