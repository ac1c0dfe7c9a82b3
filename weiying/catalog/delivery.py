"""Delivery orders (交付单): what operations ships against a signed contract, and the
customer's acceptance of it (签收 / 验收), the point where the finance layer recognises revenue.

The models live here and are imported into weiying.catalog.models, so they belong to the
catalog app. Every change goes through weiying.catalog.delivery_services.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import QUANTITY_FIELD
from weiying.core.scope import ScopeRule

OWNER = {"on_delete": models.PROTECT, "null": True, "blank": True, "related_name": "+"}


class DeliveryStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    ACCEPTED = "accepted", _("Accepted by the customer")
    CANCELLED = "cancelled", _("Cancelled")


class AcceptanceKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt signed (签收)")
    INSPECTION = "inspection", _("Inspection passed (验收)")


# The order of the forward states: an update may only move along it.
STATUS_ORDER = [DeliveryStatus.PLANNED, DeliveryStatus.SHIPPED, DeliveryStatus.DELIVERED,
                DeliveryStatus.ACCEPTED]
# Statuses in which an order is still waiting to reach the customer (for the late alert).
NOT_YET_DELIVERED = (DeliveryStatus.PLANNED, DeliveryStatus.SHIPPED)


class DataDirStorage(FileSystemStorage):
    """Files under DATA_DIR/uploads, read from the settings on every use (not once at start)."""

    @property
    def base_location(self) -> str:  # type: ignore[override]
        return str(Path(settings.DATA_DIR) / "uploads")

    @property
    def location(self) -> str:  # type: ignore[override]
        return str(Path(self.base_location).resolve())


def evidence_storage() -> FileSystemStorage:
    """Uploaded evidence lives under the data directory, never under a public URL: the
    order's page serves it to people whose scope holds the order."""
    return DataDirStorage()


def evidence_path(order: DeliveryOrder, filename: str) -> str:
    return f"delivery/{order.number}/{Path(filename).name}"


class DeliveryOrder(models.Model):
    """One shipment against a contract. `owner` and `department` are the contract's (copied
    when the order is made, moved with the owner on a transfer), so the data scope reads them
    as it reads the contract's. `external_id` is the ERP/WMS sender's id: its retries find
    the same order."""

    scope = ScopeRule(owner="owner", department="department")

    number = models.CharField(_("number"), max_length=32, unique=True)
    contract = models.ForeignKey("pipeline.Contract", on_delete=models.PROTECT,
                                 related_name="delivery_orders", verbose_name=_("contract"))
    owner = models.ForeignKey("org.Employee", verbose_name=_("owner"), **OWNER)
    department = models.ForeignKey("org.Department", **OWNER)
    status = models.CharField(_("status"), max_length=16, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PLANNED, db_index=True)
    promised_on = models.DateField(_("promised on"), null=True, blank=True, db_index=True)
    shipped_on = models.DateField(_("shipped on"), null=True, blank=True)
    delivered_on = models.DateField(_("delivered on"), null=True, blank=True)
    accepted_on = models.DateField(_("accepted on"), null=True, blank=True)
    acceptance_kind = models.CharField(_("acceptance"), max_length=16, blank=True,
                                       choices=AcceptanceKind.choices)
    evidence_note = models.TextField(_("evidence"), blank=True)
    evidence_file = models.FileField(_("evidence file"), storage=evidence_storage,
                                     upload_to=evidence_path, max_length=255, blank=True)
    evidence_url = models.URLField(_("evidence link"), max_length=500, blank=True)
    carrier = models.CharField(_("carrier"), max_length=64, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    warehouse = models.ForeignKey("catalog.Warehouse", on_delete=models.PROTECT, null=True,
                                  blank=True, related_name="delivery_orders",
                                  verbose_name=_("warehouse"))
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True,
                                   unique=True)
    note = models.TextField(_("note"), blank=True)
    cancel_reason = models.CharField(_("cancelled because"), max_length=255, blank=True)
    # When the late alert went out (delivery_order.late), so it goes out once.
    late_announced_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("org.Employee", **OWNER)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("delivery order")
        verbose_name_plural = _("delivery orders")
        indexes = [models.Index(fields=["owner", "status"], name="delivery_owner_idx"),
                   models.Index(fields=["status", "promised_on"], name="delivery_late_idx")]

    def __str__(self) -> str:
        return self.number

    def is_late(self, today: Any) -> bool:
        return (self.promised_on is not None and self.promised_on < today
                and self.status in NOT_YET_DELIVERED)


class DeliveryLine(models.Model):
    """How much of one contract line an order carries."""

    order = models.ForeignKey(DeliveryOrder, on_delete=models.CASCADE, related_name="lines")
    contract_line = models.ForeignKey("pipeline.ContractLine", on_delete=models.PROTECT,
                                      related_name="delivery_lines",
                                      verbose_name=_("contract line"))
    quantity = models.DecimalField(_("quantity"), **QUANTITY_FIELD)

    class Meta:
        verbose_name = _("delivery line")
        verbose_name_plural = _("delivery lines")
        constraints = [models.UniqueConstraint(fields=["order", "contract_line"],
                                               name="delivery_line_unique")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.contract_line_id} × {self.quantity}"
