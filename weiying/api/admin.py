from django.contrib import admin

from weiying.api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "role", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "token_hash"]
    raw_id_fields = ["user"]
