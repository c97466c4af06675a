"""Django admin for data fixes (admin role only: console/admin.py restricts the site).

Every change made here goes through tickets.actions, so it is validated and audited like
the same change made in the inbox: editing a ticket calls set_status/assign/..., adding an
identity links it (merging if another contact has it), deleting one unlinks it, and merges
are made and undone with admin actions. What the channels delivered (LINE events, inbound
emails) is shown read-only, with what became of it; an email is processed again through its
action.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _, gettext_lazy, ngettext

from common import parsing
from common.l10n import format_number

from .actions.contacts import contact_merge, create_contact, link_identity, undo_merge, unlink_identity, update_contact
from .actions.delivery import retry_delivery
from .actions.intake import reprocess_inbound_email
from .actions.teams import delete_macro, delete_team, save_macro, save_team
from .actions.tickets import UNSET, assign, set_priority, set_status, set_subject, set_tags
from .identity import normalise
from .models import Contact, ContactMerge, Identity, InboundEmail, LineEvent, Macro, Message, Team, Ticket


def _report(modeladmin, request, done: str, errors: list[str]) -> None:
    """`done`: what succeeded, in a sentence ("" when nothing did); then each error."""
    if done:
        modeladmin.message_user(request, done, messages.SUCCESS)
    for error in errors:
        modeladmin.message_user(request, error, messages.ERROR)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def _number_term(term: str) -> int | None:
    term = term.strip().lstrip("#")
    return parsing.parse_int(term, minimum=1) if term.isdigit() else None


# How much of a raw email the admin page shows.
RAW_SHOWN = 100_000


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- teams and macros -------------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "member_count", "created")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members"))

    @admin.display(description=gettext_lazy("Members"), ordering="_members")
    def member_count(self, obj):
        return obj._members

    def save_model(self, request, obj, form, change):
        pass  # saved with its members in save_related, by the action

    def save_related(self, request, form, formsets, change):
        save_team(actor=request.user, team=form.instance, members=form.cleaned_data.get("members"))

    def delete_model(self, request, obj):
        delete_team(actor=request.user, team=obj)

    def delete_queryset(self, request, queryset):
        for team in queryset:
            delete_team(actor=request.user, team=team)


@admin.register(Macro)
class MacroAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "set_status", "set_team", "set_assignee", "updated")
    list_filter = ("active", "set_status")
    search_fields = ("name", "body")
    raw_id_fields = ("set_assignee",)

    def save_model(self, request, obj, form, change):
        try:
            save_macro(actor=request.user, macro=obj)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

    def delete_model(self, request, obj):
        delete_macro(actor=request.user, macro=obj)

    def delete_queryset(self, request, queryset):
        for macro in queryset:
            delete_macro(actor=request.user, macro=macro)


# --- contacts, identities, merges -------------------------------------------------------


class IdentityInline(admin.TabularInline):
    """Shown on the contact; linking and unlinking are done on the Identities page (actions)."""

    model = Identity
    fields = ("kind", "value", "reachable", "created")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "identity_list", "ticket_count", "merged_into", "created")
    list_filter = (("merged_into", admin.EmptyFieldListFilter),)
    search_fields = ("name", "identities__value")
    search_help_text = gettext_lazy("Search by name, email address, LINE user id, phone or Stripe customer id")
    fields = ("name", "language", "version", "merged_into", "created", "updated")
    readonly_fields = ("language", "version", "merged_into", "created", "updated")  # language: set_contact_language
    inlines = [IdentityInline]
    actions = ["merge_into_first"]
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super().get_queryset(request)
            .select_related("merged_into")
            .prefetch_related("identities")
            .annotate(_tickets=Count("tickets"))
        )

    @admin.display(description=gettext_lazy("Identities"))
    def identity_list(self, obj):
        return format_html_join(", ", "{}: {}", ((i.kind, i.value) for i in obj.identities.all())) or "—"

    @admin.display(description=gettext_lazy("Tickets"), ordering="_tickets")
    def ticket_count(self, obj):
        return obj._tickets

    def save_model(self, request, obj, form, change):
        if change:
            update_contact(actor=request.user, contact=obj.pk, name=obj.name)
        else:
            created = create_contact(actor=request.user, name=obj.name)
            obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        return False  # people are merged, never deleted here (their tickets would go with them)

    @admin.action(description=gettext_lazy("Merge the selected contacts into the oldest of them"),
                  permissions=["merge"])
    def merge_into_first(self, request, queryset):
        chosen = list(queryset.order_by("created", "pk"))
        if len(chosen) < 2:
            self.message_user(request, _("Select at least two contacts to merge."), messages.WARNING)
            return
        survivor, done, errors = chosen[0], 0, []
        for other in chosen[1:]:
            try:
                contact_merge(actor=request.user, survivor=survivor, merged=other, reason="admin")
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                errors.append(f"{other}: {_error_text(exc)}")
        text = ngettext("%(count)s contact merged into %(survivor)s.", "%(count)s contacts merged into %(survivor)s.",
                        done) % {"count": done, "survivor": survivor}
        _report(self, request, text if done else "", errors)

    def has_merge_permission(self, request):
        return request.user.has_perm("tickets.merge_contacts")


class IdentityLinkForm(forms.ModelForm):
    """Adding an identity is linking it. The value is a plain field, normalised here, so the
    model's unique kind+value check does not refuse the very case that means "merge" (the
    action merges the two contacts)."""

    identity_value = forms.CharField(
        label=gettext_lazy("Value"), max_length=320,
        help_text=gettext_lazy("Email address, LINE user id (U…), phone, or Stripe customer id (cus_…)"))

    class Meta:
        model = Identity
        fields = ("contact", "kind")

    def clean(self):
        data = super().clean()
        if data.get("kind") and data.get("identity_value"):
            self.instance.value = normalise(data["kind"], data["identity_value"])
        return data


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ("value", "kind", "contact", "reachable", "created")
    list_filter = ("kind", "reachable")
    search_fields = ("=value", "value", "contact__name")
    search_help_text = gettext_lazy("Search by email address, LINE user id, phone or Stripe customer id")
    list_select_related = ("contact",)
    raw_id_fields = ("contact",)
    actions = ["unlink_selected"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # An identity is linked or unlinked, never edited in place.
        return ("contact", "kind", "value", "reachable", "created") if obj else ("reachable", "created")

    def get_actions(self, request):
        found = super().get_actions(request)
        found.pop("delete_selected", None)  # unlink_selected goes through the action instead
        return found

    def has_add_permission(self, request):
        return request.user.has_perm("tickets.link_identity")

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("tickets.link_identity")

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        result = link_identity(actor=request.user, contact=obj.contact_id, kind=obj.kind, value=obj.value,
                                       reason="admin")
        obj.pk = result.identity.pk
        if result.merge:
            self.message_user(
                request,
                _("%(kind)s %(value)s belonged to another contact: merged into %(contact)s (undo it on Contact "
                  "merges).") % {"kind": obj.get_kind_display(), "value": result.identity.value,
                                 "contact": result.identity.contact},
                messages.WARNING,
            )

    def delete_model(self, request, obj):
        unlink_identity(actor=request.user, identity=obj, reason="admin")

    def delete_queryset(self, request, queryset):
        for ident in queryset:
            unlink_identity(actor=request.user, identity=ident, reason="admin")

    @admin.action(description=gettext_lazy("Unlink the selected identities"), permissions=["delete"])
    def unlink_selected(self, request, queryset):
        done, errors = 0, []
        for ident in queryset:
            try:
                unlink_identity(actor=request.user, identity=ident, reason="admin")
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                errors.append(f"{ident}: {_error_text(exc)}")
        text = ngettext("%(count)s identity unlinked.", "%(count)s identities unlinked.", done) % {"count": done}
        _report(self, request, text if done else "", errors)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = IdentityLinkForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("contact", "kind", "identity_value")
        return ("contact", "kind", "value", "reachable", "created")


@admin.register(ContactMerge)
class ContactMergeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created", "survivor", "merged", "actor", "reason", "moved_summary", "undone_at")
    list_filter = (("undone_at", admin.EmptyFieldListFilter),)
    search_fields = ("survivor__identities__value", "merged__identities__value", "reason")
    list_select_related = ("survivor", "merged", "actor")
    actions = ["undo_selected"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("tickets.view_contactmerge")

    @admin.display(description=gettext_lazy("Moved"))
    def moved_summary(self, obj):
        moved = obj.moved or {}
        return _("%(tickets)s tickets, %(messages)s messages, %(identities)s identities") % {
            "tickets": len(moved.get("tickets", [])), "messages": len(moved.get("messages", [])),
            "identities": len(moved.get("identities", [])),
        }

    @admin.action(description=gettext_lazy("Undo the selected merges"), permissions=["merge"])
    def undo_selected(self, request, queryset):
        done, errors = 0, []
        for merge in queryset.order_by("-created", "-pk"):
            try:
                undo_merge(actor=request.user, merge=merge)
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                errors.append(f"{merge}: {_error_text(exc)}")
        text = ngettext("%(count)s merge undone.", "%(count)s merges undone.", done) % {"count": done}
        _report(self, request, text if done else "", errors)

    def has_merge_permission(self, request):
        return request.user.has_perm("tickets.merge_contacts")


# --- tickets and messages ---------------------------------------------------------------


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("created", "kind", "channel", "sender", "author", "excerpt", "delivery_status")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("created", "id")

    @admin.display(description=gettext_lazy("Text"))
    def excerpt(self, obj):
        return (obj.body_text or "")[:140]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("number", "subject", "status", "priority", "channel", "requester", "assignee", "team", "sla_due")
    list_filter = ("status", "priority", "channel", "team")
    list_select_related = ("requester", "assignee", "team")
    search_fields = ("subject",)
    search_help_text = gettext_lazy("Search by ticket number (1042 or #1042), requester email / LINE id, or subject")
    raw_id_fields = ("assignee",)
    fields = (
        "number", "subject", "status", "priority", "assignee", "team", "tags", "channel", "requester",
        "created", "updated", "first_response_due", "resolution_due", "first_responded_at", "solved_at",
        "sla_due", "version",
    )
    readonly_fields = (
        "number", "channel", "requester", "created", "updated", "first_response_due", "resolution_due",
        "first_responded_at", "solved_at", "sla_due", "version",
    )
    filter_horizontal = ("tags",)
    inlines = [MessageInline]
    show_full_result_count = False
    ordering = ("-created", "-id")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        number = _number_term(term)
        match = Q(subject__icontains=term) | Q(requester__identities__value=term.lower()) | Q(
            requester__identities__value=term
        )
        if number is not None:
            match |= Q(number=number)
        return queryset.filter(match), True

    def has_add_permission(self, request):
        return False  # tickets come from the channels and the inbox

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        pass  # every field goes through its action in save_related

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # the inline is read-only: nothing to save, but the change log reads these
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        data, ticket, user = form.cleaned_data, form.instance, request.user
        changed = set(form.changed_data)
        if "subject" in changed:
            set_subject(actor=user, ticket=ticket.pk, subject=data["subject"])
        if "priority" in changed:
            set_priority(actor=user, ticket=ticket.pk, priority=data["priority"])
        if changed & {"assignee", "team"}:
            assign(
                actor=user, ticket=ticket.pk,
                assignee=data["assignee"] if "assignee" in changed else UNSET,
                team=data["team"] if "team" in changed else UNSET,
            )
        if "tags" in changed:
            set_tags(actor=user, ticket=ticket.pk, tags=[t.name for t in data["tags"]])
        if "status" in changed:
            set_status(actor=user, ticket=ticket.pk, status=data["status"])

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            # An action refused the change (reopening a closed ticket ...): say why, change nothing.
            self.message_user(request, _error_text(exc), messages.ERROR)
            return HttpResponseRedirect(request.path)


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created", "ticket", "kind", "channel", "sender", "recipient", "delivery_status")
    list_filter = ("kind", "channel", "delivery_status")
    list_select_related = ("ticket",)
    search_help_text = gettext_lazy("Search by ticket number, sender (email / LINE id) or channel message id")
    show_full_result_count = False
    actions = ["retry_selected"]
    readonly_fields = [f.name for f in Message._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        number = _number_term(term)
        match = Q(sender=term.lower()) | Q(sender=term) | Q(recipient=term) | Q(channel_message_id=term.strip("<>"))
        if number is not None:
            match |= Q(ticket__number=number)
        return queryset.filter(match), False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("tickets.view_message")

    @admin.action(description=gettext_lazy("Retry delivery of the selected failed replies"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        done, errors = 0, []
        for message in queryset:
            try:
                retry_delivery(actor=request.user, message=message)
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                errors.append(_("message %(id)s: %(error)s") % {"id": message.pk, "error": _error_text(exc)})
        text = ngettext("%(count)s reply queued again.", "%(count)s replies queued again.", done) % {"count": done}
        _report(self, request, text if done else "", errors)

    def has_retry_permission(self, request):
        return request.user.has_perm("tickets.retry_delivery")


@admin.register(LineEvent)
class LineEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every event of every signed LINE delivery, with what became of it: an ignored one says
    why it could not be used (an event type Paydesk doesn't handle, no user, a body that was
    not JSON), a failed one the error."""

    list_display = ("received_at", "type_shown", "webhook_event_id", "status", "reason", "attempts")
    list_filter = ("status", "type")
    search_fields = ("=webhook_event_id",)
    readonly_fields = ("webhook_event_id", "type", "payload", "status", "attempts", "last_error", "received_at",
                       "processed_at")
    show_full_result_count = False

    @admin.display(description=gettext_lazy("Type"), ordering="type")
    def type_shown(self, obj):
        return obj.type or _("(none)")

    @admin.display(description=gettext_lazy("Reason or error"))
    def reason(self, obj):
        return (obj.last_error or "")[:200]


@admin.register(InboundEmail)
class InboundEmailAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every inbound email as it arrived, with what became of it: the message, or why it was
    ignored (no usable From, a duplicate ...), or the error it failed with. "Process again"
    queues failed and ignored ones anew (after a fix), through the action."""

    list_display = ("received_at", "esp", "mail_from", "subject", "status", "reason", "attempts", "message_link")
    list_filter = ("status", "esp")
    search_fields = ("mail_from", "subject", "envelope_recipient", "=digest")
    fields = ("received_at", "esp", "envelope_recipient", "mail_from", "subject", "status", "last_error", "attempts",
              "processed_at", "message_link", "size", "digest", "raw_text")
    readonly_fields = fields
    actions = ["process_again"]
    show_full_result_count = False

    def get_queryset(self, request):
        # The raw bytes (megabytes, some) are read only by the one page that shows them.
        return super().get_queryset(request).select_related("message__ticket").defer("raw")

    @admin.display(description=gettext_lazy("Reason or error"))
    def reason(self, obj):
        return (obj.last_error or "")[:200]

    @admin.display(description=gettext_lazy("Message"))
    def message_link(self, obj):
        if obj.message is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:tickets_message_change", args=[obj.message_id]),
                           _("message %(id)s on #%(number)s") % {"id": obj.message_id,
                                                                "number": obj.message.ticket.number})

    @admin.display(description=gettext_lazy("Raw message"))
    def raw_text(self, obj):
        text = bytes(obj.raw[:RAW_SHOWN]).decode("utf-8", "replace")
        rest = obj.size - RAW_SHOWN
        more = "\n" + ngettext("… (%(count)s more byte)", "… (%(count)s more bytes)", rest) % {
            "count": format_number(rest)} if rest > 0 else ""
        return format_html('<pre style="white-space:pre-wrap;font-size:12px;margin:0">{}{}</pre>', text, more)

    @admin.action(description=gettext_lazy("Process the selected emails again"), permissions=["process"])
    def process_again(self, request, queryset):
        done, errors = 0, []
        for email in queryset:
            try:
                reprocess_inbound_email(actor=request.user, email=email)
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                errors.append(_("inbound email %(id)s: %(error)s") % {"id": email.pk, "error": _error_text(exc)})
        text = ngettext("%(count)s email queued to be processed again.",
                        "%(count)s emails queued to be processed again.", done) % {"count": done}
        _report(self, request, text if done else "", errors)

    def has_process_permission(self, request):
        return request.user.has_perm("tickets.process_inboundemail")
