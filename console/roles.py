"""The roles: Django groups with the named permissions each needs.

The data migration creates them from this table; a test checks the two agree.
"""

from django.utils.translation import pgettext_lazy

MIRROR_VIEW = [
    f"payments.view_{model}"
    for model in (
        "customer", "product", "price", "paymentintent", "charge", "refund",
        "dispute", "subscription", "invoice", "earlyfraudwarning",
    )
]

# Working tickets: everyone who answers customers (agents, and finance on dispute tickets).
TICKETS_WORK = [
    "tickets.view_ticket", "tickets.add_ticket", "tickets.change_ticket", "tickets.reply_ticket",
    "tickets.note_ticket", "tickets.assign_ticket", "tickets.view_message", "tickets.retry_delivery",
    "tickets.view_contact", "tickets.add_contact", "tickets.change_contact", "tickets.view_identity",
    "tickets.link_identity", "tickets.view_team", "tickets.view_macro", "tickets.view_tag",
]
# Merging contacts moves whole conversations between people: agents and admins, not finance.
TICKETS_MERGE = ["tickets.merge_contacts", "tickets.view_contactmerge"]
# Data fixes in Django admin: teams, macros and what the admin pages show.
TICKETS_ADMIN = [
    "tickets.add_team", "tickets.change_team", "tickets.delete_team",
    "tickets.add_macro", "tickets.change_macro", "tickets.delete_macro",
    "tickets.change_identity", "tickets.add_identity", "tickets.delete_identity",
    "tickets.view_lineevent", "tickets.view_inboundemail", "tickets.process_inboundemail",
]

ROLES: dict[str, list[str]] = {
    "agent": MIRROR_VIEW
    + TICKETS_WORK
    + TICKETS_MERGE
    + [
        "payments.refund_charge",
        "payments.cancel_subscription",
        "payments.update_customer_metadata",
        "payments.create_portal_session",
        # The dispute queue, read-only: agents see who works which dispute; finance assigns.
        "disputes.view_disputecase",
    ],
    "finance": MIRROR_VIEW
    + TICKETS_WORK
    + [
        "payments.refund_charge",
        "payments.submit_dispute_evidence",
        "payments.view_webhookevent",
        "payments.view_sync_health",
        "payments.replay_event",
        "audit.view_audit",
        # The dispute queue (console/disputes): finance works it, assigns and links tickets.
        "disputes.view_disputecase", "disputes.change_disputecase",
    ],
    "admin": MIRROR_VIEW
    + TICKETS_WORK
    + TICKETS_MERGE
    + TICKETS_ADMIN
    + [
        "payments.refund_charge",
        "payments.cancel_subscription",
        "payments.update_customer_metadata",
        "payments.create_portal_session",
        "payments.submit_dispute_evidence",
        "payments.view_webhookevent",
        "payments.view_sync_health",
        "payments.replay_event",
        "payments.resync_object",
        "audit.view_audit",
        "disputes.view_disputecase", "disputes.change_disputecase",
        # Workflows: only admins write and activate them.
        "workflows.view_workflow", "workflows.add_workflow", "workflows.change_workflow",
        # People in the console (console/people): add, change, deactivate.
        "auth.view_user", "auth.add_user", "auth.change_user",
        # Lifting a login lockout (Django admin, console.actions.unlock_login).
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
    # The service user workflows act as (console.workflows.performers.service_user): what
    # workflow steps may do, with its own refund limit (PAYMENTS_REFUND_LIMITS["workflow"]).
    "workflow": MIRROR_VIEW
    + TICKETS_WORK
    + [
        "payments.refund_charge",
        "payments.update_customer_metadata",
        "payments.create_portal_session",
    ],
}

ADMIN_ROLE = "admin"
WORKFLOW_ROLE = "workflow"

# What people read for a role (the top bar, the 403 page); the group names stay as they are.
ROLE_LABELS = {
    "agent": pgettext_lazy("role", "agent"),
    "finance": pgettext_lazy("role", "finance"),
    "admin": pgettext_lazy("role", "admin"),
    "workflow": pgettext_lazy("role", "workflow"),
    "superuser": pgettext_lazy("role", "superuser"),
}


def role_label(role: str) -> str:
    """The reader's word for a role ("" for none; an unknown group name as it is)."""
    return str(ROLE_LABELS.get(role, role)) if role else ""


def has_role(user, role: str) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name=role).exists()


def ensure_roles(apps=None, verbosity: int = 0, strict: bool = True) -> None:
    """Create the role groups and give each exactly its permissions. Idempotent.

    Called by the data migration that introduces the roles and after every migrate, so a
    permission added by a later migration reaches its roles without another data migration.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    for app_config in apps.get_app_configs():
        # create_permissions skips an app without a models module (migration-state apps have
        # none). Put back what was there: on the global registry (post_migrate after `flush`)
        # a None left behind makes every later flush skip all post_migrate handlers.
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            found = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is None:
                # Inside a migration, an app migrated later has no permissions yet; the
                # post_migrate run at the end (strict) gives them to the role.
                if strict:
                    raise LookupError(f"role {role}: no permission {perm}")
                continue
            wanted.append(found)
        group.permissions.set(wanted)
