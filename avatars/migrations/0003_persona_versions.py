
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def latents_into_versions(apps, schema_editor):
    """Each persona's latent becomes its version 1, made from its seed."""
    Persona = apps.get_model("avatars", "Persona")
    PersonaVersion = apps.get_model("avatars", "PersonaVersion")
    for persona in Persona.objects.all():
        version = PersonaVersion.objects.create(
            brand_id=persona.brand_id,
            persona=persona,
            number=1,
            operation="seed",
            params={"seed": persona.seed, "truncation_psi": persona.truncation_psi},
            latent=persona.latent,
            num_ws=persona.latent_num_ws,
            w_dim=persona.latent_w_dim,
            sha256=persona.latent_sha256,
            created_by_id=persona.created_by_id,
        )
        persona.current_version = version
        persona.save(update_fields=["current_version"])


class Migration(migrations.Migration):

    dependencies = [
        ('avatars', '0002_initial'),
        ('brands', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='persona',
            name='bio',
            field=models.TextField(blank=True),
        ),
        migrations.CreateModel(
            name='PersonaVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('operation', models.CharField(choices=[('seed', 'From a seed'), ('mix', 'Bred from two personas'), ('edit', 'Edited along a direction'), ('look', 'Look applied'), ('pose', 'Pose applied'), ('rollback', 'Rolled back')], max_length=16)),
                ('params', models.JSONField(blank=True, default=dict)),
                ('latent', models.BinaryField()),
                ('num_ws', models.PositiveSmallIntegerField()),
                ('w_dim', models.PositiveSmallIntegerField()),
                ('sha256', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='brands.brand')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='avatars.personaversion')),
                ('persona', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='avatars.persona')),
            ],
            options={
                'ordering': ['persona', '-number'],
            },
        ),
        migrations.AddField(
            model_name='persona',
            name='current_version',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='avatars.personaversion'),
        ),
        migrations.AddConstraint(
            model_name='personaversion',
            constraint=models.UniqueConstraint(fields=('persona', 'number'), name='personaversion_unique_number'),
        ),
        migrations.RunPython(latents_into_versions, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='persona',
            name='latent',
        ),
        migrations.RemoveField(
            model_name='persona',
            name='latent_num_ws',
        ),
        migrations.RemoveField(
            model_name='persona',
            name='latent_sha256',
        ),
        migrations.RemoveField(
            model_name='persona',
            name='latent_w_dim',
        ),
    ]
