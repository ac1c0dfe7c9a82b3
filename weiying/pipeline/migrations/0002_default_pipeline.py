from django.db import migrations

STAGES = [
    ("初步接洽", 10, "open"),
    ("需求确认", 25, "open"),
    ("方案报价", 50, "open"),
    ("商务谈判", 75, "open"),
    ("赢单", 100, "won"),
    ("输单", 0, "lost"),
]


def seed_pipeline(apps, schema_editor):
    Pipeline = apps.get_model("pipeline", "Pipeline")
    Stage = apps.get_model("pipeline", "Stage")
    if Pipeline.objects.exists():
        return
    pipeline = Pipeline.objects.create(name="标准销售流程", is_default=True)
    for order, (name, probability, kind) in enumerate(STAGES, start=1):
        Stage.objects.create(pipeline=pipeline, name=name, order=order,
                             probability=probability, kind=kind)


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0001_initial")]
    operations = [migrations.RunPython(seed_pipeline, migrations.RunPython.noop)]
