from django.db import migrations
from django.db.models import OuterRef, Subquery


def fill(apps, schema_editor):
    Employee = apps.get_model("org", "Employee")
    Department = apps.get_model("org", "Department")
    Employee.objects.update(department_path=Subquery(
        Department.objects.filter(pk=OuterRef("department_id")).values("path")[:1]
    ))


class Migration(migrations.Migration):
    dependencies = [("org", "0003_employee_department_path")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
