"""Workflows and their versions. Saving makes a new version; a workflow runs the version it was
activated with, so editing an active workflow never changes what it does until it is activated
again (and never a run in flight: runs will point to their version)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Workflow(models.Model):
    class Status(models.TextChoices):
        INACTIVE = "inactive", _("Inactive")
        ACTIVE = "active", _("Active")

    name = models.CharField(verbose_name=_("name"), max_length=200)
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.INACTIVE)
    active_version = models.ForeignKey("WorkflowVersion", verbose_name=_("active version"), null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+")
    # The active version's trigger ("stripe:charge.dispute.created"), blank while inactive: the
    # index by which an event finds the workflows to run, without scanning them.
    trigger = models.CharField(verbose_name=_("trigger"), max_length=200, blank=True, default="", db_index=True)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class WorkflowVersion(models.Model):
    workflow = models.ForeignKey(Workflow, verbose_name=_("workflow"), on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(verbose_name=_("version"))
    definition = models.JSONField(verbose_name=_("definition"))
    trigger = models.CharField(verbose_name=_("trigger"), max_length=200)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("workflow version")
        verbose_name_plural = _("workflow versions")
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_number")]
        ordering = ["workflow", "-number"]

    def __str__(self):
        return f"{self.workflow_id} v{self.number}"


class WorkflowRun(models.Model):
    """One workflow version acting on one triggering event, at most once: the unique
    (version, event_key) is what makes a redelivered, replayed or retried event run it once.

    `steps` is the plan as made on the first attempt, each step then marked as performed,
    skipped or failed; a retry performs only what is not yet done, so a run does exactly what
    its record says it planned."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Done")
        FAILED = "failed", _("Failed")
        STOPPED = "stopped", _("Stopped")  # a loop, or a workflow that can't run any more

    workflow = models.ForeignKey(Workflow, verbose_name=_("workflow"), on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, verbose_name=_("version"), on_delete=models.PROTECT, related_name="runs")
    # "stripe:evt_…", "ticket.created:12", "message.received:88", "schedule:2026-12-04T09:00"
    event_key = models.CharField(verbose_name=_("triggering event"), max_length=200)
    trigger = models.CharField(verbose_name=_("trigger"), max_length=200)
    # The object the event is about ("ch_…", "ticket:12"): a workflow acting on one object
    # over and over is a loop, stopped after a bound.
    object_key = models.CharField(verbose_name=_("object"), max_length=200, blank=True, default="", db_index=True)
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    depth = models.PositiveSmallIntegerField(verbose_name=_("depth"), default=0)
    parent = models.ForeignKey("self", verbose_name=_("started by"), null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    # Who the run concerns, for the timeline and for who may read it.
    contact_id = models.IntegerField(verbose_name=_("customer"), null=True, blank=True, db_index=True)
    ticket_id = models.IntegerField(verbose_name=_("ticket"), null=True, blank=True, db_index=True)
    customer_id = models.CharField(verbose_name=_("Stripe customer"), max_length=100, blank=True, default="")
    # The event's objects and what fetch steps brought, as the run first saw them: a retry
    # acts on what was planned, not on what the mirror says later.
    context = models.JSONField(verbose_name=_("context"), default=dict, blank=True)
    steps = models.JSONField(verbose_name=_("steps"), default=list, blank=True)
    error = models.TextField(verbose_name=_("error"), blank=True, default="")
    attempts = models.PositiveSmallIntegerField(verbose_name=_("attempts"), default=0)
    # A claimed run belongs to its worker until then; a worker that died leaves it to be claimed again.
    claimed_until = models.DateTimeField(verbose_name=_("claimed until"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(verbose_name=_("next attempt"), null=True, blank=True)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True, db_index=True)
    finished = models.DateTimeField(verbose_name=_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")
        constraints = [models.UniqueConstraint(fields=["version", "event_key"], name="workflow_run_once")]
        indexes = [models.Index(fields=["workflow", "-created"], name="workflow_run_recent"),
                   models.Index(fields=["status", "next_attempt_at"], name="workflow_run_due")]
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"run {self.pk} of {self.workflow_id} v{self.version_id} for {self.event_key}"
