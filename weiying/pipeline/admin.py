"""Django admin for the progress layer.

Settings (pipelines, stages, assignment rules) are edited here. Business records are shown
read-only: their changes go through the services, which check permissions, keep the money
roll-ups and write the audit trail and the events that the admin would skip. Foreign keys to
big tables are raw ids and the admin does not count whole tables, so pages stay fast on a
large database.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from weiying.pipeline.models import (
    AssignmentRule,
    Contract,
    ContractLine,
    FollowUp,
    Instalment,
    Lead,
    Opportunity,
    OpportunityLine,
    Pipeline,
    Quote,
    Receipt,
    Stage,
    StageChange,
    Ticket,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse and search only; changes go through the services."""

    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Settings -------------------------------------------------------------------------------
class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["order", "name", "probability", "kind"]


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default"]
    list_filter = ["is_default"]
    search_fields = ["name"]
    inlines = [StageInline]


@admin.register(Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = ["name", "pipeline", "order", "probability", "kind"]
    list_filter = ["pipeline", "kind"]
    search_fields = ["name"]
    list_select_related = ["pipeline"]


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "priority", "team", "match_region", "match_source",
                    "is_active"]
    list_filter = ["kind", "is_active", "match_source"]
    search_fields = ["name", "match_region", "team__name"]
    raw_id_fields = ["team", "last_assigned"]
    list_select_related = ["team"]


# --- Leads and opportunities ----------------------------------------------------------------
@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ["name", "company_name", "status", "source", "owner", "department",
                    "created_at", "last_activity_at"]
    list_filter = ["status", "source", "disqualify_reason"]
    search_fields = ["name", "company_name", "phone", "external_id"]
    raw_id_fields = ["owner", "department", "customer", "opportunity"]
    list_select_related = ["owner", "department"]


class OpportunityLineInline(ReadOnlyInline):
    model = OpportunityLine
    raw_id_fields = ["product"]


@admin.register(Opportunity)
class OpportunityAdmin(ReadOnlyAdmin):
    list_display = ["name", "customer", "stage", "status", "amount", "expected_close", "owner",
                    "last_activity_at"]
    list_filter = ["status", "pipeline", "stage", "lost_reason"]
    search_fields = ["name", "customer__name"]
    raw_id_fields = ["customer", "owner", "department", "lead"]
    list_select_related = ["customer", "stage", "owner"]
    inlines = [OpportunityLineInline]


@admin.register(OpportunityLine)
class OpportunityLineAdmin(ReadOnlyAdmin):
    list_display = ["opportunity", "product", "quantity", "amount"]
    search_fields = ["opportunity__name", "product__name", "product__code"]
    raw_id_fields = ["opportunity", "product"]
    list_select_related = ["opportunity", "product"]


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ["opportunity", "from_stage", "to_stage", "at", "seconds_in_previous", "by"]
    list_filter = ["to_stage"]
    search_fields = ["opportunity__name"]
    raw_id_fields = ["opportunity", "by"]
    list_select_related = ["opportunity", "from_stage", "to_stage", "by"]


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = ["kind", "customer", "lead", "owner", "at", "next_at", "next_done"]
    list_filter = ["kind", "next_done"]
    search_fields = ["note", "customer__name", "lead__name"]
    raw_id_fields = ["customer", "lead", "opportunity", "owner"]
    list_select_related = ["customer", "lead", "owner"]


# --- Quotes, contracts and collections ------------------------------------------------------
class QuoteLineInline(ReadOnlyInline):
    model = ContractLine
    fk_name = "quote"
    fields = ["product", "quantity", "unit_price", "discount", "vat_rate", "amount", "net",
              "vat"]
    raw_id_fields = ["product"]


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "customer", "status", "total", "valid_until", "owner",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["number", "customer__name"]
    raw_id_fields = ["customer", "opportunity", "owner"]
    list_select_related = ["customer", "owner"]
    inlines = [QuoteLineInline]


class ContractLineInline(ReadOnlyInline):
    model = ContractLine
    fk_name = "contract"
    fields = ["product", "quantity", "unit_price", "discount", "vat_rate", "amount", "net",
              "vat"]
    raw_id_fields = ["product"]


class InstalmentInline(ReadOnlyInline):
    model = Instalment
    fields = ["seq", "due_on", "amount", "collected"]


@admin.register(Contract)
class ContractAdmin(ReadOnlyAdmin):
    list_display = ["number", "title", "customer", "status", "total", "collected", "signed_on",
                    "owner"]
    list_filter = ["status"]
    search_fields = ["number", "title", "customer__name"]
    raw_id_fields = ["customer", "opportunity", "quote", "owner", "department", "approved_by"]
    list_select_related = ["customer", "owner"]
    inlines = [ContractLineInline, InstalmentInline]


@admin.register(ContractLine)
class ContractLineAdmin(ReadOnlyAdmin):
    list_display = ["contract", "quote", "product", "quantity", "unit_price", "discount",
                    "amount"]
    list_filter = ["vat_rate"]
    search_fields = ["contract__number", "quote__number", "product__code", "product__name"]
    raw_id_fields = ["contract", "quote", "product"]
    list_select_related = ["contract", "quote", "product"]


@admin.register(Instalment)
class InstalmentAdmin(ReadOnlyAdmin):
    list_display = ["contract", "seq", "due_on", "amount", "collected"]
    search_fields = ["contract__number"]
    raw_id_fields = ["contract"]
    list_select_related = ["contract"]


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ["contract", "amount", "received_on", "method", "reference", "recorded_by"]
    list_filter = ["method"]
    search_fields = ["contract__number", "reference", "external_id"]
    raw_id_fields = ["contract", "instalment", "recorded_by"]
    list_select_related = ["contract", "recorded_by"]


# --- After-sale -----------------------------------------------------------------------------
@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["number", "title", "customer", "priority", "status", "owner", "opened_at",
                    "respond_by", "resolve_by"]
    list_filter = ["status", "priority"]
    search_fields = ["number", "title", "customer__name"]
    raw_id_fields = ["customer", "contract", "owner", "department"]
    list_select_related = ["customer", "owner"]
