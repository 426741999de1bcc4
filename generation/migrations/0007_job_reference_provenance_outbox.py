import django.db.models.deletion
from django.db import migrations, models


def jobs_backfill(apps, schema_editor):
    """Jobs queued before this migration: their reference is the persona's
    first version, their provenance what the worker used to derive, and they
    were sent to the broker when they were queued."""
    GenerationJob = apps.get_model("generation", "GenerationJob")
    PersonaVersion = apps.get_model("avatars", "PersonaVersion")
    for job in GenerationJob.objects.select_related("persona", "version").iterator():
        persona, version = job.persona, job.version
        reference = PersonaVersion.objects.filter(persona=persona).order_by("number").first()
        job.reference_version = reference
        job.provenance = {
            "persona": persona.handle,
            "version": version.number,
            "operation": version.operation,
            "latent_sha256": version.sha256,
            "seed": persona.seed,
            "truncation_psi": persona.truncation_psi,
            "identity_reference_version": reference.number,
        }
        job.dispatched_at = job.queued_at
        job.save(update_fields=["reference_version", "provenance", "dispatched_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("avatars", "0005_identityfingerprint"),
        ("generation", "0006_direction_brand"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="reference_version",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="avatars.personaversion"
            ),
        ),
        migrations.AddField(
            model_name="generationjob", name="provenance", field=models.JSONField(blank=True, default=dict)
        ),
        migrations.AddField(
            model_name="generationjob", name="dispatched_at", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="generationjob", name="dispatch_attempts", field=models.PositiveSmallIntegerField(default=0)
        ),
        migrations.AddField(
            model_name="generationjob", name="next_dispatch_at", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.AddField(model_name="generationjob", name="dispatch_error", field=models.TextField(blank=True)),
        migrations.AddIndex(
            model_name="generationjob",
            index=models.Index(
                fields=["status", "dispatched_at", "next_dispatch_at"], name="generation__status_b33837_idx"
            ),
        ),
        migrations.RunPython(jobs_backfill, migrations.RunPython.noop),
    ]
