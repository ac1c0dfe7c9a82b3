import datetime as dt

from django.db import migrations


def fill(apps, schema_editor):
    Employee = apps.get_model("org", "Employee")
    Assignment = apps.get_model("org", "Assignment")
    have = set(Assignment.objects.values_list("employee_id", flat=True))
    Assignment.objects.bulk_create(
        [Assignment(employee_id=e.pk, department_id=e.department_id, position=e.position,
                    level=e.level, starts_on=dt.date(1900, 1, 1), reason="join")
         for e in Employee.objects.only("pk", "department_id", "position", "level").iterator()
         if e.pk not in have],
        batch_size=5000,
    )


class Migration(migrations.Migration):
    dependencies = [("org", "0005_assignment")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
