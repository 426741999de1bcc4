
import django.db.models.deletion
from django.db import migrations, models


def pin_current_versions(apps, schema_editor):
    """Existing rows showed their persona's only latent: its version 1."""
    GenerationJob = apps.get_model("generation", "GenerationJob")
    for row in GenerationJob.objects.select_related("persona"):
        row.version_id = row.persona.current_version_id
        row.save(update_fields=["version"])


class Migration(migrations.Migration):

    dependencies = [
        ('avatars', '0003_persona_versions'),
        ('generation', '0002_layer_groups'),
    ]

    operations = [
        migrations.AddField(
            model_name='generationjob',
            name='version',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='generation_jobs', to='avatars.personaversion'),
        ),
        migrations.RunPython(pin_current_versions, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='generationjob',
            name='version',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='generation_jobs', to='avatars.personaversion'),
        ),
    ]
