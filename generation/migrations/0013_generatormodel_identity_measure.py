import json
from pathlib import Path

from django.conf import settings
from django.db import migrations, models

CALIBRATION_KEYS = ("threshold", "same_person_median", "different_person_median", "duplicate_threshold")


def read_identity_measure(apps, schema_editor):
    """Registered models that ship an identity embedding record its calibration; the
    others stay {} (scored with the pixel fallback, guarded in W)."""
    GeneratorModel = apps.get_model("generation", "GeneratorModel")
    for model in GeneratorModel.objects.all():
        directory = Path(model.directory)
        if not directory.is_absolute():
            directory = Path(settings.MODELS_ROOT) / directory
        try:
            meta = json.loads((directory / "identity" / "identity.json").read_text())
        except (OSError, ValueError):
            continue
        model.identity_measure = {"name": "learned", **{key: meta.get(key) for key in CALIBRATION_KEYS}}
        model.save(update_fields=["identity_measure"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0012_generatormodel_class_attributes")]

    operations = [
        migrations.AddField(
            model_name="generatormodel",
            name="identity_measure",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.RunPython(read_identity_measure, migrations.RunPython.noop),
    ]
