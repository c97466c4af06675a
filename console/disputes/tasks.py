"""The dispute queue's beat task (thin: the work is in reminders.py)."""

from celery import shared_task


@shared_task(name="console.disputes.tasks.remind_due_disputes")
def remind_due_disputes() -> int:
    from .reminders import remind_due_disputes as remind

    return remind()
