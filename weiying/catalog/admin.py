from django.contrib import admin

from weiying.catalog.models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "category", "unit", "list_price", "vat_rate", "is_active"]
    list_filter = ["is_active", "category", "vat_rate"]
    search_fields = ["code", "name"]
