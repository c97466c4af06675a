"""Applied events are announced to their listeners after commit; those applied before this
migration were announced inside their transaction, so they count as announced."""

from django.db import migrations, models
from django.db.models import F


def mark_applied_as_announced(apps, schema_editor):
    WebhookEvent = apps.get_model("payments", "WebhookEvent")
    WebhookEvent.objects.filter(status="applied").update(announced_at=F("processed_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookevent',
            name='announce_attempts',
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='webhookevent',
            name='announce_error',
            field=models.TextField(blank=True, db_default='', default=''),
        ),
        migrations.AddField(
            model_name='webhookevent',
            name='announced_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='webhookevent',
            index=models.Index(condition=models.Q(('announced_at__isnull', True), ('status', 'applied')), fields=['processed_at'], name='event_unannounced'),
        ),
        migrations.RunPython(mark_applied_as_announced, migrations.RunPython.noop),
    ]
