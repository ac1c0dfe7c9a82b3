from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import MONEY_FIELD, RATE_FIELD


class Product(models.Model):
    """Something the company sells. The operations layer deepens this (SKUs, capacity)."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=128)
    category = models.CharField(_("category"), max_length=64, blank=True)
    unit = models.CharField(_("unit"), max_length=16, default="件")
    list_price = models.DecimalField(_("list price (VAT incl.)"), **MONEY_FIELD)
    vat_rate = models.DecimalField(_("VAT rate"), default=Decimal("0.13"), **RATE_FIELD)
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
