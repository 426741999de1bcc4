import json
from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def read_class_attributes(apps, schema_editor):
    """Registered models get the class attributes their checkpoint's training.json records."""
    GeneratorModel = apps.get_model("generation", "GeneratorModel")
    for model in GeneratorModel.objects.all():
        directory = Path(model.directory)
        if not directory.is_absolute():
            directory = Path(settings.MODELS_ROOT) / directory
        try:
            attributes = json.loads((directory / "training.json").read_text()).get("class_attributes") or []
        except (OSError, ValueError, AttributeError):
            continue
        if len(attributes) == model.config.get("c_dim"):
            model.class_attributes = attributes
            model.save(update_fields=["class_attributes"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0011_campaign_jobs_throughput")]

    operations = [
        migrations.AddField(
            model_name="generatormodel",
            name="class_attributes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(read_class_attributes, migrations.RunPython.noop),
    ]
