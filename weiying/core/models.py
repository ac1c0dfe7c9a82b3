from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditLog(models.Model):
    """One row per write, unmasked view or export: who, when, what, before/after, from where."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("actor"),
    )
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=16, default="system")

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"


class DomainEvent(models.Model):
    """The outbox: written in the same transaction as the change, dispatched after commit."""

    name = models.CharField(_("event"), max_length=64, db_index=True)
    occurred_at = models.DateTimeField(_("occurred at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    subject_type = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    dispatched_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("domain event")
        verbose_name_plural = _("domain events")

    def __str__(self) -> str:
        return f"{self.name} {self.subject_type}#{self.subject_id}"


class EventHandling(models.Model):
    """One subscriber's handling of one event; the unique pair makes replays harmless."""

    class Status(models.TextChoices):
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="handlings")
    subscriber = models.CharField(max_length=128)
    status = models.CharField(max_length=8, choices=Status.choices)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    handled_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "subscriber"], name="event_handling_once")
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} on {self.event_id}: {self.status}"
