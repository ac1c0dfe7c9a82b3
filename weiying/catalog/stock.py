"""Stock and capacity: goods on hand per warehouse, service capacity per month, what signed
contracts have reserved of them, and the ledger of every change.

A product is *tracked* once it has a stock row (goods) or a capacity month (services and
milestones); an untracked product is never short and signing reserves nothing for it.

The models live here and are imported into weiying.catalog.models, so they belong to the
catalog app. Every change goes through weiying.catalog.stock_services.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import QUANTITY_FIELD


class Warehouse(models.Model):
    """A place goods are kept and shipped from."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=128)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class StockLevel(models.Model):
    """Goods of one product in one warehouse. `reserved` is what signed contracts hold and
    may exceed `on_hand` (a sale is never refused for want of stock): the difference is the
    shortfall operations must buy or make."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock",
                                  verbose_name=_("warehouse"))
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT,
                                related_name="stock_levels", verbose_name=_("product"))
    on_hand = models.DecimalField(_("on hand"), default=0, **QUANTITY_FIELD)
    reserved = models.DecimalField(_("reserved"), default=0, **QUANTITY_FIELD)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        ordering = ["warehouse__code", "product__code"]
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "product"], name="stock_once"),
            models.CheckConstraint(condition=models.Q(on_hand__gte=0), name="stock_not_negative"),
            models.CheckConstraint(condition=models.Q(reserved__gte=0),
                                   name="stock_reserved_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.warehouse_id}/{self.product_id}: {self.on_hand}"

    @property
    def free(self) -> Decimal:
        return self.on_hand - self.reserved


class CapacityPeriod(models.Model):
    """What a service can deliver in one month (e.g. implementation days), and how much of it
    signed contracts hold. `reserved` may exceed `capacity`: overbooked."""

    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT,
                                related_name="capacity_periods", verbose_name=_("product"))
    year = models.PositiveSmallIntegerField(_("year"))
    month = models.PositiveSmallIntegerField(_("month"))
    capacity = models.DecimalField(_("capacity"), default=0, **QUANTITY_FIELD)
    reserved = models.DecimalField(_("reserved"), default=0, **QUANTITY_FIELD)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("capacity period")
        verbose_name_plural = _("capacity periods")
        ordering = ["product__code", "year", "month"]
        constraints = [
            models.UniqueConstraint(fields=["product", "year", "month"], name="capacity_once"),
            models.CheckConstraint(condition=models.Q(capacity__gte=0),
                                   name="capacity_not_negative"),
            models.CheckConstraint(condition=models.Q(reserved__gte=0),
                                   name="capacity_reserved_not_negative"),
            models.CheckConstraint(condition=models.Q(month__gte=1, month__lte=12),
                                   name="capacity_month_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.year}-{self.month:02d}: {self.capacity}"

    @property
    def free(self) -> Decimal:
        return self.capacity - self.reserved


class ReservationStatus(models.TextChoices):
    RESERVED = "reserved", _("Reserved")
    RELEASED = "released", _("Released")
    ISSUED = "issued", _("Issued")


class Reservation(models.Model):
    """What one contract line holds of one product (a bundle line holds each component):
    either in a warehouse's stock or in a month's capacity. `issued` counts what was shipped
    from it; the rest is released when the contract is cancelled. One row per (line,
    product), so a replayed signing reserves nothing twice."""

    contract_line = models.ForeignKey("pipeline.ContractLine", on_delete=models.PROTECT,
                                      related_name="reservations", verbose_name=_("line"))
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("product"))
    stock = models.ForeignKey(StockLevel, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="reservations", verbose_name=_("stock"))
    capacity = models.ForeignKey(CapacityPeriod, on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="reservations",
                                 verbose_name=_("capacity period"))
    quantity = models.DecimalField(_("quantity"), **QUANTITY_FIELD)
    issued = models.DecimalField(_("issued"), default=0, **QUANTITY_FIELD)
    status = models.CharField(_("status"), max_length=16, choices=ReservationStatus.choices,
                              default=ReservationStatus.RESERVED, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        constraints = [
            models.UniqueConstraint(fields=["contract_line", "product"],
                                    name="reservation_once"),
            models.CheckConstraint(
                condition=models.Q(stock__isnull=True) | models.Q(capacity__isnull=True),
                name="reservation_one_place"),
        ]

    def __str__(self) -> str:
        return f"{self.contract_line_id}/{self.product_id}: {self.quantity} {self.status}"

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.issued if self.status == ReservationStatus.RESERVED else \
            Decimal(0)


class MovementKind(models.TextChoices):
    RECEIVE = "receive", _("Received")
    COUNT = "count", _("Count correction")
    ISSUE = "issue", _("Issued on shipment")


class StockMovement(models.Model):
    """The ledger of stock changes: goods received, count corrections and shipments.
    `key` is the sender's id (an ERP/WMS message id, a delivery order line): a repeat with the
    same key finds this row and changes nothing."""

    stock = models.ForeignKey(StockLevel, on_delete=models.PROTECT, related_name="movements",
                              verbose_name=_("stock"))
    kind = models.CharField(_("kind"), max_length=16, choices=MovementKind.choices)
    quantity = models.DecimalField(_("change"), **QUANTITY_FIELD)
    on_hand_after = models.DecimalField(_("on hand after"), **QUANTITY_FIELD)
    key = models.CharField(_("sender's id"), max_length=128, null=True, blank=True,
                           unique=True)
    note = models.CharField(_("note"), max_length=255, blank=True)
    actor = models.ForeignKey("org.Employee", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.stock_id} {self.kind} {self.quantity}"
