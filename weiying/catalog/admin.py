from typing import Any

from django.contrib import admin

from weiying.catalog.models import (
    CapacityPeriod,
    PriceList,
    PriceListItem,
    Product,
    Reservation,
    Sku,
    StockLevel,
    StockMovement,
    Warehouse,
)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "category", "unit", "list_price", "vat_rate", "is_active"]
    list_filter = ["is_active", "category", "vat_rate"]
    search_fields = ["code", "name"]


# Stock, reservations and the ledger change only through weiying.catalog.stock_services (they
# keep each other in step), so the admin shows them read-only.
class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Sku)
class SkuAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "product", "list_price", "standard_cost", "is_active"]
    search_fields = ["code", "name", "product__code"]


class PriceListItemInline(admin.TabularInline):
    model = PriceListItem
    extra = 0


@admin.register(PriceList)
class PriceListAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "customer_level", "valid_from", "valid_until", "priority",
                    "is_active"]
    inlines = [PriceListItemInline]


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "is_active"]


@admin.register(StockLevel)
class StockLevelAdmin(_ReadOnly):
    list_display = ["warehouse", "product", "on_hand", "reserved"]
    list_filter = ["warehouse"]


@admin.register(CapacityPeriod)
class CapacityPeriodAdmin(_ReadOnly):
    list_display = ["product", "year", "month", "capacity", "reserved"]


@admin.register(Reservation)
class ReservationAdmin(_ReadOnly):
    list_display = ["contract_line", "product", "stock", "capacity", "quantity", "issued",
                    "status"]
    list_filter = ["status"]


@admin.register(StockMovement)
class StockMovementAdmin(_ReadOnly):
    list_display = ["created_at", "stock", "kind", "quantity", "on_hand_after", "key", "actor"]
    list_filter = ["kind"]
