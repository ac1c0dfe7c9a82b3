"""Admin screens: for looking things up. Changes go through the pages and the API, which
check permissions and write the audit trail; history rows are read-only here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from weiying.customers.models import (
    Consent,
    Contact,
    Customer,
    CustomerMerge,
    OwnershipChange,
    Tag,
    WeChatIdentity,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "color"]
    search_fields = ["name", "group"]
    list_filter = ["group"]


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "title", "phone", "email", "is_primary"]


class IdentityInline(admin.TabularInline):
    model = WeChatIdentity
    extra = 0
    fields = ["kind", "value"]


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "kind", "level", "status", "owner", "in_pool",
                    "pool_department", "total_signed", "last_activity_at", "merged_into"]
    list_filter = ["kind", "level", "status", "in_pool", "source"]
    search_fields = ["name", "name_key", "phone", "=id"]
    list_select_related = ["owner", "pool_department", "merged_into"]
    raw_id_fields = ["owner", "department", "pool_department", "merged_into"]
    inlines = [ContactInline, IdentityInline]
    ordering = ["-last_activity_at", "-id"]


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ["name", "customer", "title", "phone", "is_primary"]
    search_fields = ["name", "phone", "customer__name"]
    list_select_related = ["customer"]


@admin.register(WeChatIdentity)
class WeChatIdentityAdmin(ReadOnlyAdmin):
    list_display = ["kind", "value", "customer", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value", "customer__name"]
    list_select_related = ["customer"]


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["customer", "purpose", "granted", "method", "at", "recorded_by"]
    list_filter = ["purpose", "granted", "method"]
    search_fields = ["customer__name", "evidence"]
    list_select_related = ["customer", "recorded_by"]


@admin.register(OwnershipChange)
class OwnershipChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "customer", "from_owner", "to_owner", "by", "reason"]
    list_filter = ["action"]
    search_fields = ["customer__name", "reason"]
    list_select_related = ["customer", "from_owner", "to_owner", "by"]


@admin.register(CustomerMerge)
class CustomerMergeAdmin(ReadOnlyAdmin):
    list_display = ["at", "survivor", "duplicate", "by"]
    search_fields = ["survivor__name", "duplicate__name"]
    list_select_related = ["survivor", "duplicate", "by"]
