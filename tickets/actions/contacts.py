"""Contacts and their identities: resolving who wrote, linking and unlinking identities,
merging two contacts and undoing a merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from django.utils.translation import pgettext_lazy
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.actors import require
from audit.models import AuditAction

from .. import identity as identity_rules
from ..models import Contact, ContactMerge, Identity, Message, Ticket
from ..selectors import language_code
from ._common import audit, author, bump_contact, get_contact, target_of
from .errors import ActionError, UndoRefused


@dataclass
class LinkResult:
    identity: Identity
    created: bool = False
    merge: ContactMerge | None = None


def resolve_contact(kind: str, value: str, *, actor=None, name: str = "") -> tuple[Contact, Identity, bool]:
    """The contact an identity belongs to; an unknown identity creates a contact. Paydesk
    does this itself for whoever writes in.

    Returns (contact, identity, created). Safe under concurrency: two first messages from
    one new address end on one contact (the unique kind+value decides).
    """
    require(actor, "tickets.add_contact", doing=pgettext_lazy("permission", "add contacts"), system=True)
    return _resolve(actor, kind, value, name)


def _resolve(actor, kind: str, value: str, name: str) -> tuple[Contact, Identity, bool]:
    value = identity_rules.normalise(kind, value)
    found = Identity.objects.select_related("contact").filter(kind=kind, value=value).first()
    if found:
        return found.contact, found, False
    try:
        with transaction.atomic():
            contact = Contact.objects.create(name=(name or "")[:255])
            ident = Identity.objects.create(contact=contact, kind=kind, value=value)
            audit(actor, AuditAction.CONTACT_CREATE, target_of(contact), kind=kind, value=value)
    except IntegrityError:
        found = Identity.objects.select_related("contact").get(kind=kind, value=value)
        return found.contact, found, False
    return contact, ident, True


def create_contact(*, actor, name: str = "", identities: Sequence[tuple[str, str]] = ()) -> Contact:
    require(actor, "tickets.add_contact", doing=pgettext_lazy("permission", "add contacts"))
    if identities:
        require(actor, "tickets.link_identity", doing=pgettext_lazy("permission", "link identities"))
    pairs = [(kind, identity_rules.normalise(kind, value)) for kind, value in identities]
    with transaction.atomic():
        contact = Contact.objects.create(name=name[:255])
        audit(actor, AuditAction.CONTACT_CREATE, target_of(contact), name=name)
        for kind, value in pairs:
            _link(actor, contact, kind, value, "")
    return contact


def update_contact(*, actor, contact, name: str) -> Contact:
    require(actor, "tickets.change_contact", doing=pgettext_lazy("permission", "edit contacts"))
    with transaction.atomic():
        contact = get_contact(contact, lock=True)
        old = contact.name
        Contact.objects.filter(pk=contact.pk).update(name=name[:255])
        bump_contact(contact, "name")
        audit(actor, AuditAction.CONTACT_UPDATE, target_of(contact), name={"from": old, "to": contact.name})
    return contact


def link_identity(*, actor, contact, kind: str, value: str, reason: str = "") -> LinkResult:
    """Give `contact` the identity kind:value. If another contact has it, the two are merged
    into `contact` (the merge is recorded and can be undone)."""
    require(actor, "tickets.link_identity", doing=pgettext_lazy("permission", "link identities"))
    return _link(actor, contact, kind, value, reason)


def _link(actor, contact, kind: str, value: str, reason: str) -> LinkResult:
    value = identity_rules.normalise(kind, value)
    with transaction.atomic():
        contact = get_contact(contact, lock=True)
        if contact.merged_into_id:
            raise ActionError(_("%(contact)s was merged into another contact; link to that one.")
                              % {"contact": contact}, code="merged")
        existing = Identity.objects.select_for_update().filter(kind=kind, value=value).first()
        if existing and existing.contact_id == contact.pk:
            return LinkResult(existing, created=False)
        if existing:
            # Taking another contact's identity merges the two: a person needs that permission
            # too. (None reaches here only through link_identity_to, which Paydesk may run.)
            require(actor, "tickets.merge_contacts", doing=pgettext_lazy("permission", "merge contacts"), system=True)
            merge = _merge(actor, contact, existing.contact_id, reason or f"linked {kind} {value}")
            existing.refresh_from_db()
            return LinkResult(existing, created=False, merge=merge)
        try:
            with transaction.atomic():
                ident = Identity.objects.create(contact=contact, kind=kind, value=value)
        except IntegrityError:
            raise ActionError(_("%(kind)s %(value)s was linked elsewhere at the same moment; try again.")
                              % {"kind": Identity.Kind(kind).label, "value": value}) from None
        bump_contact(contact)
        audit(actor, AuditAction.IDENTITY_LINK, target_of(contact), kind=kind, value=value, reason=reason)
        return LinkResult(ident, created=True)


def link_identity_to(*, actor=None, anchor_kind: str, anchor_value: str, kind: str, value: str,
                     name: str = "", reason: str = "") -> LinkResult:
    """Link kind:value to whichever contact has anchor_kind:anchor_value (an email, usually),
    creating that contact if nobody has it yet. Paydesk does this itself: when the mirror
    applies a Stripe customer (console), and for the shop's contacts API (tickets.api)."""
    require(actor, "tickets.link_identity", doing=pgettext_lazy("permission", "link identities"), system=True)
    with transaction.atomic():
        contact, _ident, _created = _resolve(actor, anchor_kind, anchor_value, name)
        if name and not contact.name:
            Contact.objects.filter(pk=contact.pk, name="").update(name=name[:255])
        return _link(actor, contact, kind, value, reason)


def unlink_identity(*, actor, identity, reason: str = "") -> None:
    """Remove an identity from its contact. Later messages from it start a new contact."""
    require(actor, "tickets.link_identity", doing=pgettext_lazy("permission", "unlink identities"))
    pk = identity.pk if isinstance(identity, Identity) else identity
    with transaction.atomic():
        ident = Identity.objects.select_for_update().filter(pk=pk).first()
        if ident is None:
            raise ActionError(_("That identity is already unlinked."), code="not_found")
        _unlink(actor, ident, reason)


def disconnect_identity(*, actor=None, kind: str, value: str, reason: str = "") -> Contact:
    """The customer took an identity back (disconnected LINE on the shop's site, which tells
    Paydesk through the contacts API): it leaves its contact as unlink_identity does. Paydesk
    does this itself on the integration's word. Returns the contact it left."""
    require(actor, "tickets.link_identity", doing=pgettext_lazy("permission", "unlink identities"), system=True)
    value = identity_rules.normalise(kind, value)
    with transaction.atomic():
        ident = Identity.objects.select_for_update().filter(kind=kind, value=value).first()
        if ident is None:
            raise ActionError(_("No %(kind)s identity %(value)s.")
                              % {"kind": Identity.Kind(kind).label, "value": value}, code="not_found")
        return _unlink(actor, ident, reason)


def _unlink(actor, ident: Identity, reason: str) -> Contact:
    """Delete a locked identity and record it on its contact."""
    contact = get_contact(ident.contact_id, lock=True)
    kind, value = ident.kind, ident.value
    ident.delete()
    bump_contact(contact)
    audit(actor, AuditAction.IDENTITY_UNLINK, target_of(contact), kind=kind, value=value, reason=reason)
    return contact


def contact_merge(*, actor, survivor, merged, reason: str = "") -> ContactMerge:
    """Move `merged`'s tickets, messages and identities to `survivor`, recording what moved."""
    require(actor, "tickets.merge_contacts", doing=pgettext_lazy("permission", "merge contacts"))
    return _merge(actor, survivor, merged, reason)


def _merge(actor, survivor, merged, reason: str) -> ContactMerge:
    survivor_pk = survivor.pk if isinstance(survivor, Contact) else survivor
    merged_pk = merged.pk if isinstance(merged, Contact) else merged
    if survivor_pk == merged_pk:
        raise ActionError(_("A contact cannot be merged into itself."), code="invalid")
    with transaction.atomic():
        # Lock in id order so two opposite merges cannot deadlock.
        locked = {c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=[survivor_pk, merged_pk]).order_by("pk")}
        if len(locked) != 2:
            raise ActionError(_("One of the contacts no longer exists."), code="not_found")
        survivor, merged = locked[survivor_pk], locked[merged_pk]
        if survivor.merged_into_id or merged.merged_into_id:
            raise ActionError(_("One of the contacts was already merged into another."), code="merged")
        moved = {
            "tickets": list(Ticket.objects.filter(requester=merged).values_list("pk", flat=True)),
            "messages": list(Message.objects.filter(contact=merged).values_list("pk", flat=True)),
            "identities": [
                {"id": pk, "kind": kind, "value": value}
                for pk, kind, value in Identity.objects.filter(contact=merged).values_list("pk", "kind", "value")
            ],
            "name": merged.name,
            "name_taken": bool(merged.name and not survivor.name),
            "language_taken": bool(merged.language and not survivor.language),
        }
        Ticket.objects.filter(pk__in=moved["tickets"]).update(requester=survivor, updated=timezone.now())
        Message.objects.filter(pk__in=moved["messages"]).update(contact=survivor)
        Identity.objects.filter(contact=merged).update(contact=survivor)
        if moved["name_taken"]:
            Contact.objects.filter(pk=survivor.pk).update(name=merged.name)
        if moved["language_taken"]:
            Contact.objects.filter(pk=survivor.pk).update(language=merged.language)
        Contact.objects.filter(pk=merged.pk).update(merged_into=survivor, version=F("version") + 1, updated=timezone.now())
        bump_contact(survivor, "name", "language")
        record = ContactMerge.objects.create(
            survivor=survivor, merged=merged, actor=author(actor),
            reason=reason[:255], moved=moved, survivor_version=survivor.version,
        )
        audit(
            actor, AuditAction.CONTACT_MERGE, target_of(survivor), merged=merged.pk, merge=record.pk, reason=reason,
            tickets=len(moved["tickets"]), messages=len(moved["messages"]),
            identities=[f"{i['kind']}:{i['value']}" for i in moved["identities"]],
        )
    return record


def undo_merge(*, actor, merge) -> ContactMerge:
    """Put back what a merge moved, while the surviving contact has not changed since."""
    require(actor, "tickets.merge_contacts", doing=pgettext_lazy("permission", "undo merges"))
    pk = merge.pk if isinstance(merge, ContactMerge) else merge
    with transaction.atomic():
        record = ContactMerge.objects.select_for_update().filter(pk=pk).first()
        if record is None:
            raise ActionError(_("No merge %(id)s.") % {"id": pk}, code="not_found")
        if record.undone_at:
            raise UndoRefused(_("This merge was already undone."), code="undone")
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update()
            .filter(pk__in=[record.survivor_id, record.merged_id])
            .order_by("pk")
        }
        survivor, merged = locked[record.survivor_id], locked[record.merged_id]
        if survivor.version != record.survivor_version:
            raise UndoRefused(
                _("%(contact)s has changed since the merge (identities, name, messages or another merge); "
                  "undo is no longer safe. Unlink or merge by hand instead.") % {"contact": survivor},
                code="changed",
            )
        moved = record.moved
        Ticket.objects.filter(pk__in=moved.get("tickets", []), requester=survivor).update(
            requester=merged, updated=timezone.now()
        )
        Message.objects.filter(pk__in=moved.get("messages", []), contact=survivor).update(contact=merged)
        Identity.objects.filter(pk__in=[i["id"] for i in moved.get("identities", [])], contact=survivor).update(
            contact=merged
        )
        if moved.get("name_taken"):
            Contact.objects.filter(pk=survivor.pk).update(name="")
        if moved.get("language_taken"):
            Contact.objects.filter(pk=survivor.pk).update(language="")
        Contact.objects.filter(pk=merged.pk).update(merged_into=None, version=F("version") + 1, updated=timezone.now())
        bump_contact(survivor, "name")
        record.undone_at = timezone.now()
        record.undone_by = author(actor)
        record.save(update_fields=["undone_at", "undone_by"])
        audit(actor, AuditAction.CONTACT_MERGE_UNDO, target_of(survivor), merged=merged.pk, merge=record.pk)
    return record




def set_line_following(*, actor=None, user_id: str, following: bool, event_id: str = "") -> Contact:
    """A LINE user followed the shop's account (the contact exists, created if new, and can be
    pushed to) or unfollowed it (pushes to them would fail). Paydesk does this itself, on
    LINE's word."""
    require(actor, "tickets.change_identity", doing=pgettext_lazy("permission", "change whether a LINE user can be reached"), system=True)
    with transaction.atomic():
        contact, ident, _created = _resolve(actor, Identity.Kind.LINE, user_id, "")
        if ident.reachable != following:
            Identity.objects.filter(pk=ident.pk).update(reachable=following)
        audit(actor, AuditAction.IDENTITY_LINE_FOLLOW if following else AuditAction.IDENTITY_LINE_UNFOLLOW,
              target_of(contact), value=ident.value, event=event_id)
    return contact


# --- the customer's language ------------------------------------------------------------------

# Where a contact's language came from. Each but "detected" is the customer's own word (their
# LINE settings, their mail client, their Stripe account, or an agent who asked them) and
# replaces what was known; a guess from what they wrote only fills a blank.
LANGUAGE_SOURCES = ("line", "email", "stripe", "agent", "detected")


def set_contact_language(*, actor=None, contact, language: str, source: str) -> Contact:
    """The language the customer reads (a tag such as "ja-JP" is kept as "ja"). Paydesk does
    this itself from what the channels and Stripe say; an agent may set it too (source
    "agent", which may also clear it). A detected language never replaces a known one."""
    if source not in LANGUAGE_SOURCES:
        raise ActionError(_("Unknown language source %(source)s.") % {"source": repr(source)}, code="invalid")
    require(actor, "tickets.change_contact", doing=pgettext_lazy("permission", "set a customer's language"), system=source != "agent")
    code = language_code(language)
    if language and not code:
        if source == "agent":
            raise ActionError(_("“%(language)s” is not a language code such as “ja” or “en”.")
                              % {"language": str(language)[:32]}, code="invalid")
        code = ""
    with transaction.atomic():
        contact = get_contact(contact, lock=True)
        if not code and source != "agent":
            return contact
        store_language(actor, contact, code, source)
    return contact


def store_language(actor, contact: Contact, code: str, source: str) -> bool:
    """Store `code` on a locked contact unless nothing changes or a guess would replace a
    known language; True if it changed (audited, as a contact edit)."""
    if contact.language == code or (source == "detected" and contact.language):
        return False
    old = contact.language
    Contact.objects.filter(pk=contact.pk).update(language=code, updated=timezone.now())
    contact.language = code
    audit(actor, AuditAction.CONTACT_UPDATE, target_of(contact), language={"from": old, "to": code}, source=source)
    return True


# --- the LINE profile ---------------------------------------------------------------------------


def set_line_profile(*, actor=None, contact, display_name: str, picture_url: str, language: str = "") -> Contact:
    """What the customer's LINE profile says: their display name and picture are kept on the
    contact, a contact without a name takes the display name, and the profile's language is
    the customer's own word (as set_contact_language with source "line"). Paydesk does this
    itself, on LINE's word; one audit row says what changed."""
    require(actor, "tickets.change_contact", doing=pgettext_lazy("permission", "store a customer's LINE profile"),
            system=True)
    display_name, picture_url = (display_name or "").strip()[:255], (picture_url or "")[:1000]
    code = language_code(language) if language else ""
    with transaction.atomic():
        contact = get_contact(contact, lock=True)
        changes: dict = {}
        if display_name != contact.line_name:
            changes["line_name"] = {"from": contact.line_name, "to": display_name}
        if picture_url != contact.line_picture_url:
            changes["line_picture_url"] = {"from": contact.line_picture_url, "to": picture_url}
        if display_name and not contact.name:
            changes["name"] = {"from": "", "to": display_name}
        if code and code != contact.language:
            changes["language"] = {"from": contact.language, "to": code}
        now = timezone.now()
        update = {"line_name": display_name, "line_picture_url": picture_url, "line_profile_at": now}
        if "name" in changes:
            update["name"] = display_name
        if "language" in changes:
            update["language"] = code
        # The fetch time is stored even when nothing changed: it is what makes the profile fresh.
        Contact.objects.filter(pk=contact.pk).update(**update, **({"updated": now} if changes else {}))
        for field, value in update.items():
            setattr(contact, field, value)
        if changes:
            audit(actor, AuditAction.CONTACT_UPDATE, target_of(contact), source="line", **changes)
    return contact
