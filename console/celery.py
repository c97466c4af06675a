import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("paydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def recycle_database_connections(sender=None, **kwargs):
    """Around each task, what Django does around each request: keep the connection while it
    is usable and younger than CONN_MAX_AGE, close it otherwise (see CELERY_DB_REUSE_MAX)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside its caller's transaction: leave the connection alone
    from django.db import close_old_connections

    close_old_connections()
