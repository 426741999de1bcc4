from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def truncation_centre_backfill(apps, schema_editor):
    """Models registered before the field: what their checkpoint config says,
    else by provenance as the engine reads such configs (our training loop
    writes training.json beside its exports: class; an imported .pkl: global)."""
    GeneratorModel = apps.get_model("generation", "GeneratorModel")
    for model in GeneratorModel.objects.all():
        directory = Path(model.directory)
        directory = directory if directory.is_absolute() else Path(settings.MODELS_ROOT) / directory
        centre = model.config.get("truncation_centre")
        if centre is None:
            centre = "class" if (directory / "training.json").is_file() else "global"
        model.truncation_centre = centre
        model.save(update_fields=["truncation_centre"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0009_identity_centre")]

    operations = [
        migrations.AddField(
            model_name="generatormodel",
            name="truncation_centre",
            field=models.CharField(
                choices=[
                    ("global", "Global average w (NVIDIA's truncation)"),
                    ("class", "The class's centre (models trained here)"),
                ],
                default="global",
                max_length=8,
            ),
        ),
        migrations.RunPython(truncation_centre_backfill, migrations.RunPython.noop),
    ]
