
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('avatars', '0003_persona_versions'),
        ('brands', '0002_layergrouppermission'),
        ('generation', '0004_directions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='LibraryItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('look', 'Look'), ('pose', 'Pose')], max_length=8)),
                ('name', models.CharField(max_length=120)),
                ('layer_group', models.CharField(max_length=40)),
                ('source_latent', models.BinaryField(blank=True, null=True)),
                ('strength', models.FloatField(blank=True, null=True)),
                ('recipe', models.JSONField(default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='library_items', to='brands.brand')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('direction', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='library_items', to='generation.direction')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='library_items', to='generation.generatormodel')),
            ],
            options={
                'ordering': ['kind', 'name'],
                'constraints': [models.UniqueConstraint(fields=('brand', 'kind', 'name'), name='libraryitem_unique_brand_kind_name'), models.CheckConstraint(condition=models.Q(models.Q(('direction__isnull', True), ('source_latent__isnull', False)), models.Q(('direction__isnull', False), ('source_latent__isnull', True), ('strength__isnull', False)), _connector='OR'), name='libraryitem_source_or_direction')],
            },
        ),
    ]
