from django.contrib import admin

from weiying.core.models import AuditLog, DomainEvent, EventHandling


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_id", "ip", "channel"]
    list_filter = ["action", "channel"]
    search_fields = ["object_id", "action"]
    raw_id_fields = ["actor"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "name", "subject_type", "subject_id", "dispatched_at"]
    list_filter = ["name"]
    raw_id_fields = ["actor"]


@admin.register(EventHandling)
class EventHandlingAdmin(admin.ModelAdmin):
    list_display = ["event", "subscriber", "status", "attempts", "handled_at"]
    list_filter = ["status", "subscriber"]
    raw_id_fields = ["event"]
