"""The month of each daily fact (for the month sums), an index for slices, the subtree months of the
departments near the top of the tree, and no database foreign keys on the derived tables
(see the models' docstring). Existing facts get their month and the subtree months are summed
from the department months here, so nothing waits for the nightly rebuild."""

import django.db.models.deletion
from django.db import migrations, models


SUBTREE_DEPTH = 4
SEGMENT = 8


def fill(apps, schema_editor):
    from django.db.models.functions import TruncMonth

    apps.get_model("performance", "DailyFact").objects.update(month=TruncMonth("day"))
    with schema_editor.connection.cursor() as cursor:
        for depth in range(1, SUBTREE_DEPTH + 1):
            ancestor = f"CAST(substr(department_path, {(depth - 1) * SEGMENT + 1}, {SEGMENT}) AS bigint)"
            cursor.execute(
                f"INSERT INTO performance_subtreemonth (department_id, depth, month, measure, line, "
                f"value) SELECT {ancestor}, {depth}, month, measure, line, SUM(value) "
                f"FROM performance_departmentmonth WHERE length(department_path) >= {depth * SEGMENT} "
                f"GROUP BY {ancestor}, month, measure, line HAVING SUM(value) <> 0")


class Migration(migrations.Migration):

    dependencies = [
        ('org', '0007_employee_employment_payroll'),
        ('performance', '0006_dailyfact_employee_no_own_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='SubtreeMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField()),
                ('depth', models.PositiveSmallIntegerField()),
                ('measure', models.CharField(max_length=24)),
                ('line', models.CharField(blank=True, default='', max_length=64)),
                ('value', models.BigIntegerField()),
            ],
        ),
        migrations.RemoveIndex(
            model_name='dailyfact',
            name='dailyfact_path_idx',
        ),
        migrations.RemoveIndex(
            model_name='dailyfact',
            name='dailyfact_day_idx',
        ),
        migrations.AddField(
            model_name='dailyfact',
            name='month',
            field=models.DateField(null=True),
        ),
        migrations.AlterField(
            model_name='dailyfact',
            name='department',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='org.department'),
        ),
        migrations.AlterField(
            model_name='dailyfact',
            name='employee',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='org.employee'),
        ),
        migrations.AlterField(
            model_name='departmentmonth',
            name='department',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='org.department'),
        ),
        migrations.AddIndex(
            model_name='dailyfact',
            index=models.Index(fields=['measure', 'day', 'department_path'], name='dailyfact_slice_idx'),
        ),
        migrations.AddField(
            model_name='subtreemonth',
            name='department',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='org.department'),
        ),
        migrations.AddConstraint(
            model_name='subtreemonth',
            constraint=models.UniqueConstraint(fields=('department', 'measure', 'line', 'month'), name='subtreemonth_unique'),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='dailyfact',
            name='month',
            field=models.DateField(),
        ),
    ]
