
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0004_directions'),
    ]

    operations = [
        migrations.AddField(
            model_name='generatormodel',
            name='identity_basis',
            field=models.BinaryField(default=b''),
        ),
        migrations.AddField(
            model_name='generatormodel',
            name='identity_min_distance',
            field=models.FloatField(default=0.0),
        ),
    ]
