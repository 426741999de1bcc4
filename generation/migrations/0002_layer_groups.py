from django.db import migrations, models

from generation.layer_groups import DEFAULT_IDENTITY_GROUP, layer_groups_default


def fill_defaults(apps, schema_editor):
    GeneratorModel = apps.get_model("generation", "GeneratorModel")
    for model in GeneratorModel.objects.all():
        model.layer_groups = layer_groups_default(model.num_ws)
        model.identity_group = DEFAULT_IDENTITY_GROUP
        model.class_names = [f"class {i}" for i in range(model.config.get("c_dim", 0))]
        model.save(update_fields=["layer_groups", "identity_group", "class_names"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="generatormodel", name="class_names", field=models.JSONField(blank=True, default=list)
        ),
        migrations.AddField(model_name="generatormodel", name="layer_groups", field=models.JSONField(default=list)),
        migrations.AddField(
            model_name="generatormodel",
            name="identity_group",
            field=models.CharField(default=DEFAULT_IDENTITY_GROUP, max_length=40),
            preserve_default=False,
        ),
        migrations.RunPython(fill_defaults, migrations.RunPython.noop),
    ]
