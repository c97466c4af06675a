# What "Solve" does next on the ticket page, per person (console.UserPreference.after_solve).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('console', '0008_refund_approvals'),
    ]

    operations = [
        migrations.AddField(
            model_name='userpreference',
            name='after_solve',
            field=models.CharField(choices=[('next', 'Go to the next ticket in the view'), ('stay', 'Stay on the ticket')], default='next', max_length=8),
        ),
    ]
