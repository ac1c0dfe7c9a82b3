from django.db import migrations


def seed(apps, schema_editor):
    from weiying.performance.kpis import BUILTIN

    Kpi = apps.get_model("performance", "Kpi")
    for position, (code, name, unit, direction, formula, by_line, definition) in enumerate(
            BUILTIN):
        Kpi.objects.update_or_create(code=code, defaults={
            "name": name, "unit": unit, "direction": direction, "formula": formula,
            "by_line": by_line, "definition": definition, "is_builtin": True,
            "position": position * 10})


class Migration(migrations.Migration):
    dependencies = [("performance", "0002_builtin_role_permissions")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
