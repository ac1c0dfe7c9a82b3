from django.db import migrations

from weiying.pipeline.defaults import seed_pipeline


def seed(apps, schema_editor):
    seed_pipeline(apps.get_model("pipeline", "Pipeline"), apps.get_model("pipeline", "Stage"))


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
