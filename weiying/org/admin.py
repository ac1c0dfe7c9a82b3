from django.contrib import admin

from weiying.org.models import Company, Department, Employee, Role


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "short_name", "created_at"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "parent", "depth", "city", "region", "is_active"]
    list_filter = ["kind", "depth", "is_active"]
    search_fields = ["name", "city"]
    raw_id_fields = ["parent", "manager"]
    readonly_fields = ["path", "depth"]


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "department", "position", "level", "leader", "status"]
    list_filter = ["status", "role", "level"]
    search_fields = ["number", "name"]
    raw_id_fields = ["department", "leader", "user"]
    readonly_fields = ["path"]


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "data_scope", "is_builtin"]
