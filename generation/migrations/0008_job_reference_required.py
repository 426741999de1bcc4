import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    # Apart from 0007: PostgreSQL refuses to alter a table with the backfill's
    # deferred foreign-key checks still pending in the same transaction.
    dependencies = [("generation", "0007_job_reference_provenance_outbox")]

    operations = [
        migrations.AlterField(
            model_name="generationjob",
            name="reference_version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="avatars.personaversion"
            ),
        ),
    ]
