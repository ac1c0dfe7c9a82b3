from django.db import migrations


def seed(apps, schema_editor):
    from weiying.core.permissions import grant_builtin_permissions
    from weiying.finance.chart import DEFAULT_CHART

    Account = apps.get_model("finance", "Account")
    for code, name, kind, role in DEFAULT_CHART:
        if not Account.objects.filter(code=code).exists():
            Account.objects.create(code=code, name=name, kind=kind, role=role)
    # The built-in roles gain the finance permissions; a company's own roles are untouched.
    grant_builtin_permissions(apps.get_model("org", "Role"))


class Migration(migrations.Migration):
    dependencies = [("finance", "0001_initial"), ("org", "0004_fill_employee_department_path")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
