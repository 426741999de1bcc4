from django.db import migrations, models


class Migration(migrations.Migration):
    # Existing models are left uncalibrated (0.0): computing the centres needs the
    # engine (PyTorch), so the identity guard calibrates each such model on its first
    # identity change and saves the result (avatars.identity.identity_centres).
    dependencies = [("generation", "0008_job_reference_required")]

    operations = [
        migrations.AddField(
            model_name="generatormodel",
            name="identity_centres",
            field=models.BinaryField(default=b"", editable=False),
        ),
        migrations.AddField(
            model_name="generatormodel",
            name="identity_centre_distance",
            field=models.FloatField(default=0.0, editable=False),
        ),
    ]
