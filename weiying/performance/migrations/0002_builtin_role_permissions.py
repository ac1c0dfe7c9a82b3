from django.db import migrations


def grant(apps, schema_editor):
    # The built-in roles gain the performance and report permissions.
    from weiying.core.permissions import grant_builtin_permissions

    grant_builtin_permissions(apps.get_model("org", "Role"))


class Migration(migrations.Migration):
    dependencies = [("performance", "0001_initial"), ("org", "0006_fill_assignments")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
