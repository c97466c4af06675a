"""The audit log moves to its own app (`audit`, below payments and tickets): its rows are
copied with their ids (timeline entries name them as audit:<id>), then console's model goes."""

from django.core.management.color import no_style
from django.db import migrations


def copy_rows(apps, schema_editor):
    Old = apps.get_model("console", "AuditEntry")
    New = apps.get_model("audit", "AuditEntry")
    New._meta.get_field("created").auto_now_add = False  # keep each row's own time
    batch = []
    for row in Old.objects.order_by("id").iterator(chunk_size=2000):
        batch.append(New(id=row.id, actor_id=row.actor_id, action=row.action, target=row.target,
                         details=row.details, created=row.created))
        if len(batch) == 2000:
            New.objects.bulk_create(batch)
            batch = []
    New.objects.bulk_create(batch)
    # The copied ids were given explicitly: move the new table's sequence past them.
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [New]):
            cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0003_timeline"),
        ("audit", "0001_initial"),
    ]
    operations = [
        migrations.RunPython(copy_rows, migrations.RunPython.noop),
        migrations.DeleteModel(name="AuditEntry"),
    ]
