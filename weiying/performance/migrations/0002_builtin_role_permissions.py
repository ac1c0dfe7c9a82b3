from django.db import migrations


def grant(apps, schema_editor):
    # The built-in roles gain the performance and report permissions; a company's own roles
    # are untouched.
    from weiying.core.permissions import BUILTIN_ROLES

    Role = apps.get_model("org", "Role")
    for spec in BUILTIN_ROLES:
        role = Role.objects.filter(code=spec["code"], is_builtin=True).first()
        if role is not None:
            role.permissions = sorted(set(role.permissions) | set(spec["permissions"]))
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("performance", "0001_initial"), ("org", "0006_fill_assignments")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
