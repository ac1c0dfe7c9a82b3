from django.db import migrations


def seed_roles(apps, schema_editor):
    from weiying.core.permissions import BUILTIN_ROLES

    Role = apps.get_model("org", "Role")
    for spec in BUILTIN_ROLES:
        Role.objects.update_or_create(
            code=spec["code"],
            defaults={"name": spec["name"], "data_scope": spec["data_scope"],
                      "permissions": list(spec["permissions"]), "is_builtin": True},
        )


class Migration(migrations.Migration):
    dependencies = [("org", "0001_initial")]
    operations = [migrations.RunPython(seed_roles, migrations.RunPython.noop)]
