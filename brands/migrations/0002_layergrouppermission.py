
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('brands', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='LayerGroupPermission',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('owner', 'Owner'), ('creator', 'Creator'), ('reviewer', 'Reviewer'), ('viewer', 'Viewer')], max_length=16)),
                ('layer_groups', models.JSONField(default=list)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='layer_group_permissions', to='brands.brand')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('brand', 'role'), name='layergrouppermission_unique_brand_role')],
            },
        ),
    ]
