
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('avatars', '0004_libraryitem'),
        ('brands', '0002_layergrouppermission'),
        ('generation', '0005_identity_guard'),
    ]

    operations = [
        migrations.CreateModel(
            name='IdentityFingerprint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('embedding', models.BinaryField()),
                ('projected', models.BinaryField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='brands.brand')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='generation.generatormodel')),
                ('persona', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='identity_fingerprints', to='avatars.persona')),
            ],
            options={
                'indexes': [models.Index(fields=['model', 'id'], name='avatars_ide_model_i_38e7cb_idx')],
            },
        ),
    ]
