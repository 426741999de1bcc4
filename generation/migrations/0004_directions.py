
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0003_generationjob_version'),
    ]

    operations = [
        migrations.CreateModel(
            name='Direction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80)),
                ('kind', models.CharField(choices=[('sefa', 'Closed-form factorization (SeFa)'), ('ganspace', 'PCA of sampled w (GANSpace)'), ('interfacegan', 'Linear boundary on labels (InterFaceGAN)')], max_length=16)),
                ('layer_group', models.CharField(max_length=40)),
                ('vector', models.BinaryField()),
                ('strength_min', models.FloatField()),
                ('strength_max', models.FloatField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='directions', to='generation.generatormodel')),
            ],
            options={
                'ordering': ['model', 'layer_group', 'name'],
                'constraints': [models.UniqueConstraint(fields=('model', 'name'), name='direction_unique_model_name'), models.CheckConstraint(condition=models.Q(('strength_min__lt', models.F('strength_max'))), name='direction_range')],
            },
        ),
    ]
