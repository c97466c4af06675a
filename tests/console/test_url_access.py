"""Default deny, walked: every URL pattern of the project, for every role and for anonymous.

ACCESS below says, for each URL pattern (as Django prints it, regex groups shown as
<name>), what an anonymous visitor, an agent, finance and an admin get. The walk fails
for any pattern without an entry, so a new page cannot ship without saying who may see it,
and for any entry whose pattern no longer exists.

Adding a page: add `"your/route/<int:pk>/": [case(...)]` (helpers below). Adding a model to
Django admin: add `**admin_model("app", "model", object_id)`. Anonymous visitors must be
sent to the login page everywhere except the few PUBLIC patterns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from audit.models import AuditEntry
from payments.events import store_event
from payments.models import Customer, SyncCursor
from payments.views import LISTS
from tests import factories

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "agent", "finance", "admin")

# Inbound email providers whose anymail webhook Paydesk routes (tickets.channel_urls).
ANYMAIL_INBOUND = (
    "amazon_ses", "brevo", "mailersend", "mailgun", "mailjet", "postal", "postmark", "sendgrid", "sendinblue",
    "sparkpost",
)

WALK_INBOUND_ESPS = ("postmark", "sendgrid")

# Reached without logging in: login pages, liveness, and endpoints that authenticate the
# request themselves (Stripe's and LINE's signatures, the API's bearer token, anymail's basic auth).
PUBLIC = {
    "login/", "admin/login/", "healthz", "stripe/webhook/", "line/webhook/", "api/contacts/link",
    "line/images/<str:token>",  # LINE's servers fetch a reply's image by its signed, expiring token
    "account/password/<uidb64>/<token>/", "account/password/done/",  # where an emailed password link lands
    "api/contacts/unlink", *(f"anymail/{provider}/inbound/" for provider in ANYMAIL_INBOUND),
}


# --- what a visitor gets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    status: int
    # For redirects; "{next}" is the requested path and query; a callable when it needs the database.
    location: str | Callable[[], str] | None = None

    def problem(self, response, full_path: str) -> str | None:
        if response.status_code != self.status:
            where = f" → {response['Location']}" if response.has_header("Location") else ""
            return f"got {response.status_code}{where}, want {self}"
        if self.location is not None:
            location = self.location() if callable(self.location) else self.location
            want = location.replace("{next}", urlencode({"next": full_path}, safe="/")[5:])
            if response["Location"] != want:
                return f"redirected to {response['Location']}, want {want}"
        return None

    def __str__(self):
        location = self.location() if callable(self.location) else self.location
        return f"{self.status}{' → ' + location if location else ''}"


OK = Expect(200)
BAD_REQUEST = Expect(400)
UNAUTHORIZED = Expect(401)
DENIED = Expect(403)
NOT_FOUND = Expect(404)
NOT_ALLOWED = Expect(405)
LOGIN = Expect(302, "/login/?next={next}")
ADMIN_LOGIN = Expect(302, "/admin/login/?next={next}")


def redirect(to: str | Callable[[], str]) -> Expect:
    return Expect(302, to)


@dataclass(frozen=True)
class Case:
    expect: dict[str, Expect]
    kwargs: dict[str, str | Callable[[], str]] = field(default_factory=dict)
    method: str = "get"
    query: str = ""
    data: dict | None = None


def case(*, anonymous=LOGIN, agent=OK, finance=OK, admin=OK, method="get", query="", data=None, **kwargs) -> Case:
    """One request to one pattern: path parameters as keywords, the answer per visitor."""
    return Case({"anonymous": anonymous, "agent": agent, "finance": finance, "admin": admin},
                kwargs, method, query, data)


def everyone(expect: Expect, **kw) -> Case:
    return case(anonymous=expect, agent=expect, finance=expect, admin=expect, **kw)


def finance_and_admin(**kw) -> Case:
    """Pages for those who watch the sync: finance and admin; agents are refused."""
    return case(agent=DENIED, **kw)


def admin_site(admin=OK, *, anonymous=ADMIN_LOGIN, **kw) -> Case:
    """Django admin: the admin role only; agent and finance are sent to the admin login.

    Anonymous visitors go to the admin login from the site's own pages, and to the console
    login (LoginRequiredMiddleware's default) from a model's pages.
    """
    return case(anonymous=anonymous, agent=ADMIN_LOGIN, finance=ADMIN_LOGIN, admin=admin, **kw)


def admin_model(app_label: str, model: str, object_id, *, view: bool = True, add: bool = False,
                delete: bool = False) -> dict[str, list[Case]]:
    """The six patterns Django admin adds per registered model: what the admin role may open.

    Mirror models are view-only (nothing added or deleted by hand); a model whose admin
    creates or deletes through actions says so with add=True / delete=True.
    """
    base = f"admin/{app_label}/{model}/"
    seen = OK if view else DENIED
    oid = object_id

    def change_url():
        return f"/admin/{app_label}/{model}/{oid() if callable(oid) else oid}/change/"

    return {
        base: [admin_site(seen, anonymous=LOGIN)],
        f"{base}add/": [admin_site(OK if add else DENIED, anonymous=LOGIN)],
        f"{base}<path:object_id>/history/": [admin_site(seen, anonymous=LOGIN, object_id=oid)],
        f"{base}<path:object_id>/delete/": [admin_site(OK if delete else DENIED, anonymous=LOGIN, object_id=oid)],
        f"{base}<path:object_id>/change/": [admin_site(seen, anonymous=LOGIN, object_id=oid)],
        f"{base}<path:object_id>/": [admin_site(redirect(change_url), anonymous=LOGIN, object_id=oid)],
    }


def _user_pk(username):
    return lambda: str(get_user_model().objects.get(username=username).pk)


def _group_pk():
    return str(Group.objects.get(name="agent").pk)


def _content_type_id():
    return str(ContentType.objects.get_for_model(Customer).pk)


# Sample ids, one object of each mirrored type (see `seeded` below).
SAMPLE_ID = {
    "customers": "cus_sample", "payments": "ch_sample", "refunds": "re_sample", "disputes": "dp_sample",
    "subscriptions": "sub_sample", "invoices": "in_sample", "payment-intents": "pi_sample",
    "fraud-warnings": "issfr_sample", "products": "prod_sample", "prices": "price_sample",
}
ADMIN_SAMPLE = {
    "customer": "cus_sample", "product": "prod_sample", "price": "price_sample", "paymentintent": "pi_sample",
    "charge": "ch_sample", "refund": "re_sample", "dispute": "dp_sample", "subscription": "sub_sample",
    "invoice": "in_sample", "earlyfraudwarning": "issfr_sample", "webhookevent": "evt_sample",
    "synccursor": "reconcile",
}


def _audit_pk():
    return str(AuditEntry.objects.get(target="evt_sample").pk)


ACCESS: dict[str, list[Case]] = {
    # --- console -----------------------------------------------------------------------------
    "": [case()],
    "search/": [
        case(query="q=cus_sample", agent=redirect("/stripe/customers/cus_sample/"),
             finance=redirect("/stripe/customers/cus_sample/"), admin=redirect("/stripe/customers/cus_sample/")),
    ],
    "login/": [case(anonymous=OK, agent=redirect("/"), finance=redirect("/"), admin=redirect("/"))],
    "logout/": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED),
        case(method="post", agent=redirect("/login/"), finance=redirect("/login/"), admin=redirect("/login/")),
    ],
    "healthz": [everyone(OK)],
    # --- payments: the webhook checks Stripe's signature, not a login -------------------------
    "stripe/webhook/": [everyone(NOT_ALLOWED), everyone(BAD_REQUEST, method="post", data={"no": "signature"})],
    "stripe/events/": [finance_and_admin()],
    "stripe/events/<str:event_id>/": [
        finance_and_admin(event_id="evt_sample"),
        case(event_id="evt_missing", agent=DENIED, finance=NOT_FOUND, admin=NOT_FOUND),
    ],
    "sync/": [finance_and_admin()],
    "sync/replay/": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED),
        finance_and_admin(method="post", finance=redirect("/sync/"), admin=redirect("/sync/")),
    ],
    "sync/retry-follow-up/": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED),
        finance_and_admin(method="post", finance=redirect("/sync/"), admin=redirect("/sync/")),
    ],
    "stripe/<slug:slug>/": [case(slug=slug) for slug in LISTS]
    + [case(slug="no-such-list", agent=NOT_FOUND, finance=NOT_FOUND, admin=NOT_FOUND)],
    # A payment's page is console's (below); the mirror's generic page serves every other list.
    "stripe/<slug:slug>/<str:object_id>/": [case(slug=slug, object_id=SAMPLE_ID[slug]) for slug in LISTS
                                            if slug != "payments"]
    + [case(slug="refunds", object_id="cus_sample", agent=NOT_FOUND, finance=NOT_FOUND, admin=NOT_FOUND)],
    # --- tickets channels: each checks its own credentials; a request without them is refused --
    "line/webhook/": [everyone(NOT_ALLOWED), everyone(BAD_REQUEST, method="post", data={"events": []})],
    # Only a good signature reaches an image (tests/tickets/test_reply_attachments.py); any other token is 404.
    "line/images/<str:token>": [everyone(NOT_FOUND, token="not-a-signed-token"),
                                everyone(NOT_ALLOWED, method="post", token="not-a-signed-token")],
    "api/contacts/link": [everyone(NOT_ALLOWED), everyone(UNAUTHORIZED, method="post", data={})],
    "api/contacts/unlink": [everyone(NOT_ALLOWED), everyone(UNAUTHORIZED, method="post", data={})],
    # Inbound email answers only for the providers named in TICKETS_INBOUND_EMAIL_ESPS (the walk
    # enables postmark and sendgrid), and then only with anymail's basic auth.
    **{f"anymail/{provider}/inbound/": [
        everyone(BAD_REQUEST if provider in WALK_INBOUND_ESPS else NOT_FOUND, method="post", data={})]
       for provider in ANYMAIL_INBOUND},
    # --- Django admin --------------------------------------------------------------------------
    "admin/": [admin_site()],
    "admin/login/": [case(anonymous=OK, agent=OK, finance=OK, admin=redirect("/admin/"))],
    "admin/logout/": [
        case(anonymous=ADMIN_LOGIN, agent=redirect("/admin/"), finance=redirect("/admin/"), admin=NOT_ALLOWED),
    ],
    "admin/password_change/": [admin_site()],
    "admin/password_change/done/": [admin_site()],
    "admin/autocomplete/": [admin_site(DENIED)],
    "admin/jsi18n/": [admin_site()],
    "admin/r/<path:content_type_id>/<path:object_id>/": [
        admin_site(NOT_FOUND, content_type_id=_content_type_id, object_id="cus_sample"),
    ],
    "admin/<app_label>/": [
        admin_site(app_label="payments"),
        admin_site(app_label="audit"),
        admin_site(app_label="tickets"),
        admin_site(app_label="axes"),
        admin_site(NOT_FOUND, app_label="auth"),  # users and groups are not the admin role's
    ],
    "admin/<url>": [admin_site(NOT_FOUND, url="no-such-page/")],
    **{k: v for model, oid in ADMIN_SAMPLE.items() for k, v in admin_model("payments", model, oid).items()},
    **admin_model("audit", "auditentry", _audit_pk),
    **admin_model("auth", "user", _user_pk("agent"), view=False),
    **admin_model("auth", "group", _group_pk, view=False),
    "admin/auth/user/<id>/password/": [admin_site(DENIED, anonymous=LOGIN, id=_user_pk("agent"))],
}


# --- the agent inbox and the ticket page (tickets/urls.py) ----------------------------------------
# One sample ticket, opened by an email through tickets.actions (the same Message-ID returns it).


def _sample_message():
    from tickets import actions
    from tickets.models import Message

    found = Message.objects.select_related("ticket").filter(channel="email", channel_message_id="sample@paydesk.test").first()
    if found is None:
        found = actions.receive_message(channel="email", sender="Sample Customer <sample@example.com>",
                                        subject="Sample", body_text="Hello", channel_message_id="sample@paydesk.test").message
    return found


def _ticket_number():
    return str(_sample_message().ticket.number)


def _ticket_path():
    return f"/tickets/{_ticket_number()}/"


def _sample_contact_pk():
    return str(_sample_message().ticket.requester_id)


def _sample_identity_pk():
    return str(_sample_message().ticket.requester.identities.get().pk)


def _sample_message_pk():
    return str(_sample_message().pk)


def _walk_macro_late():
    return _walk_macro()  # defined further down, with the other Django admin samples


def post_only(data=None, ok=OK, finance=None, **kw) -> list[Case]:
    """A POST endpoint: GET is 405 for everyone logged in; POST answers `ok` (finance: `finance`)."""
    return [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, **kw),
        case(method="post", data=data or {}, agent=ok, finance=finance or ok, admin=ok, **kw),
    ]


ACCESS.update({
    "contacts/": [case(), case(query="channel=line")],
    "tickets/": [case(agent=redirect("/tickets/mine/"), finance=redirect("/tickets/mine/"), admin=redirect("/tickets/mine/"))],
    "tickets/<slug:view>/": [case(view="mine"), case(view="all"), case(view="team-none", agent=NOT_FOUND,
                                                                       finance=NOT_FOUND, admin=NOT_FOUND)],
    "tickets/bulk/": post_only({"view": "all", "op": "solved"}, ok=redirect("/tickets/all/")),
    "tickets/<int:number>/": [case(number=_ticket_number), case(number="999999", agent=NOT_FOUND, finance=NOT_FOUND,
                                                                 admin=NOT_FOUND)],
    # An empty reply: the page again with "A reply needs some text."; nothing is sent.
    "tickets/<int:number>/reply/": post_only(number=_ticket_number),
    "tickets/<int:number>/update/": post_only({"field": "nothing"}, ok=BAD_REQUEST, number=_ticket_number),
    "tickets/<int:number>/tags/": post_only(ok=redirect(_ticket_path), number=_ticket_number),
    "tickets/<int:number>/macro/": [case(number=_ticket_number)],
    # The sample ticket has no attachment: the rule shows who reaches the 404 and who is refused.
    "tickets/<int:number>/attachments/<int:pk>/": [
        case(number=_ticket_number, pk="999999", agent=NOT_FOUND, finance=NOT_FOUND, admin=NOT_FOUND)],
    "tickets/<int:number>/presence/": post_only(number=_ticket_number),
    # The sample ticket has no draft: who reaches the 404 and who is refused.
    # People: admins only; the password link's landing page is outside the login wall.
    "people/": [case(agent=DENIED, finance=DENIED)],
    "people/new": [case(agent=DENIED, finance=DENIED)],
    "people/<int:pk>/": [case(pk="999999", agent=DENIED, finance=DENIED, admin=NOT_FOUND)],
    "people/<int:pk>/deactivate": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, pk="999999"),
        case(method="post", agent=DENIED, finance=DENIED, admin=NOT_FOUND, pk="999999")],
    "people/<int:pk>/reactivate": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, pk="999999"),
        case(method="post", agent=DENIED, finance=DENIED, admin=NOT_FOUND, pk="999999")],
    "people/<int:pk>/password-link": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, pk="999999"),
        case(method="post", agent=DENIED, finance=DENIED, admin=NOT_FOUND, pk="999999")],
    # Macros: everyone who works tickets reads the list; admins create, edit, (de)activate, delete.
    "macros/": [case(), case(query="team=none&q=refund")],
    "macros/new": [case(agent=DENIED, finance=DENIED),
                   case(method="post", data={"preview": "1"}, agent=DENIED, finance=DENIED)],
    "macros/<int:pk>/": [case(pk=_walk_macro_late, agent=DENIED, finance=DENIED),
                         case(pk="999999", agent=DENIED, finance=DENIED, admin=NOT_FOUND)],
    "macros/<int:pk>/deactivate": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, pk="999999"),
        case(method="post", agent=DENIED, finance=DENIED, admin=NOT_FOUND, pk="999999")],
    "macros/<int:pk>/activate": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, pk="999999"),
        case(method="post", agent=DENIED, finance=DENIED, admin=NOT_FOUND, pk="999999")],
    "macros/<int:pk>/delete": [case(pk=_walk_macro_late, agent=DENIED, finance=DENIED),
                               case(method="post", agent=DENIED, finance=DENIED, admin=NOT_FOUND, pk="999999")],
    # A token that is not one: the page says the link has expired (Django first moves a real
    # token out of the URL with a redirect).
    "account/password/<uidb64>/<token>/": [case(uidb64="MQ", token="set-password", anonymous=OK)],
    "account/password/done/": [case(anonymous=OK)],
    "tickets/<int:number>/drafts/<int:pk>/use/": [
        case(number=_ticket_number, pk="999999", agent=NOT_FOUND, finance=NOT_FOUND, admin=NOT_FOUND)],
    "tickets/<int:number>/drafts/<int:pk>/discard/": post_only(ok=NOT_FOUND, number=_ticket_number, pk="999999"),
    "assist/tickets/<int:number>/": [case(number=_ticket_number), case(number="999999", agent=NOT_FOUND,
                                                                        finance=NOT_FOUND, admin=NOT_FOUND)],
    # The sample message is inbound: nothing to retry, back to the ticket with a message.
    "tickets/messages/<int:pk>/retry/": post_only(ok=redirect(_ticket_path), pk=_sample_message_pk),
    "tickets/contacts/<int:pk>/link/": post_only({"kind": "nonsense"}, ok=BAD_REQUEST, pk=_sample_contact_pk),
    "tickets/contacts/<int:pk>/language/": post_only({"language": "klingon"}, ok=BAD_REQUEST, pk=_sample_contact_pk),
    "tickets/identities/<int:pk>/unlink/": post_only(ok=redirect("/tickets/"), pk=_sample_identity_pk),
    # Merging is for agents and admins; finance is refused before the (missing) merge is looked up.
    "tickets/merges/<int:pk>/undo/": post_only(ok=NOT_FOUND, finance=DENIED, pk="999999"),
    # Ticket merges: the same rule (finance refused). A ticket that is no candidate: the card
    # again, saying so; the (missing) merge to undo is looked up after the permission.
    "tickets/<int:number>/merge/": [
        case(number=_ticket_number, finance=DENIED),
        case(number=_ticket_number, query="into=999999", finance=DENIED),
        case(method="post", data={"into": "999999"}, number=_ticket_number, finance=DENIED)],
    "tickets/ticket-merges/<int:pk>/undo/": post_only(ok=NOT_FOUND, finance=DENIED, pk="999999"),
})


# --- tickets in Django admin (tickets/admin.py): edits go through tickets.actions ----------------


def _walk_team():
    from tickets import actions
    from tickets.models import Team

    admin = get_user_model().objects.get(username="admin")
    return str((Team.objects.filter(slug="walk-team").first()
                or actions.save_team(actor=admin, team=Team(name="Walk team", slug="walk-team"), members=[])).pk)


def _walk_macro():
    from tickets import actions
    from tickets.models import Macro

    admin = get_user_model().objects.get(username="admin")
    return str((Macro.objects.filter(name="Walk macro").first()
                or actions.save_macro(actor=admin, macro=Macro(name="Walk macro", body="Thank you."))).pk)


def _walk_merge():
    from tickets import actions
    from tickets.models import ContactMerge

    found = ContactMerge.objects.filter(reason="walk").first()
    if found is None:
        a, b = (actions.receive_message(channel="email", sender=f"Walk {n} <walk{n}@example.com>", subject="Walk",
                                        body_text="Hi", channel_message_id=f"walk{n}@paydesk.test").message
                for n in (1, 2))
        found = actions.contact_merge(actor=get_user_model().objects.get(username="admin"),
                                      survivor=a.ticket.requester_id, merged=b.ticket.requester_id, reason="walk")
    return str(found.pk)


def _walk_line_event():
    from tickets import line
    from tickets.actions.intake import store_line_events
    from tickets.models import LineEvent

    store_line_events(line.split_events(b'{"events": [{"webhookEventId": "01WALKLINEEVENT", "type": "follow"}]}'))
    return str(LineEvent.objects.get(webhook_event_id="01WALKLINEEVENT").pk)


def _walk_inbound_email():
    from tickets.actions.intake import store_inbound_email

    row, _ = store_inbound_email(b"From: Walk <walk@example.com>\r\nSubject: Walk\r\n\r\nHello\r\n", esp="file")
    return str(row.pk)


ACCESS.update({
    **admin_model("tickets", "ticket", lambda: str(_sample_message().ticket.pk)),
    **admin_model("tickets", "message", _sample_message_pk),
    **admin_model("tickets", "contact", _sample_contact_pk, add=True),  # people are merged, never deleted
    **admin_model("tickets", "identity", _sample_identity_pk, add=True, delete=True),  # link / unlink
    **admin_model("tickets", "contactmerge", _walk_merge),  # made and undone by actions only
    **admin_model("tickets", "team", _walk_team, add=True, delete=True),
    **admin_model("tickets", "macro", _walk_macro, add=True, delete=True),
    **admin_model("tickets", "lineevent", _walk_line_event),
    **admin_model("tickets", "inboundemail", _walk_inbound_email),
})


# --- the Stripe panel beside a ticket and its refund flow (console/views/panel.py) ----------------------
# The sample contact has no Stripe customer: its panel says so; a charge not theirs is 404 (never refunded).
_NOT_THEIRS = {"agent": NOT_FOUND, "finance": NOT_FOUND, "admin": NOT_FOUND}
ACCESS.update({
    "customers/<int:contact_id>/panel": [
        case(contact_id=_sample_contact_pk),
        case(contact_id="999999", **_NOT_THEIRS),
    ],
    "customers/<int:contact_id>/charges/<str:charge_id>/refund": [
        case(contact_id=_sample_contact_pk, charge_id="ch_sample", **_NOT_THEIRS),
    ],
    "customers/<int:contact_id>/charges/<str:charge_id>/refund/preview": post_only(
        ok=NOT_FOUND, contact_id=_sample_contact_pk, charge_id="ch_sample"),
    "customers/<int:contact_id>/charges/<str:charge_id>/refund/confirm": post_only(
        ok=NOT_FOUND, contact_id=_sample_contact_pk, charge_id="ch_sample"),
    # Handing a refund over the limit to finance: every role that refunds and notes tickets.
    "customers/<int:contact_id>/charges/<str:charge_id>/refund/ask-finance": post_only(
        ok=NOT_FOUND, contact_id=_sample_contact_pk, charge_id="ch_sample"),
})


# --- the panel's cancel, metadata and portal-link flows (console/views/panel_actions.py) ----------------
# Agents and admins may (the sample contact has no Stripe customer: 404); finance may not (403).
_PANEL_ACTION = {"agent": NOT_FOUND, "finance": DENIED, "admin": NOT_FOUND}
ACCESS.update({
    "customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel": [
        case(contact_id=_sample_contact_pk, subscription_id="sub_sample", **_PANEL_ACTION)],
    **{route: post_only(ok=NOT_FOUND, finance=DENIED, contact_id=_sample_contact_pk, subscription_id="sub_sample")
       for route in ("customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel/preview",
                     "customers/<int:contact_id>/subscriptions/<str:subscription_id>/cancel/confirm")},
    **{f"customers/<int:contact_id>/{flow}": [case(contact_id=_sample_contact_pk, **_PANEL_ACTION)]
       for flow in ("metadata", "portal-link")},
    **{f"customers/<int:contact_id>/{flow}/{step}": post_only(ok=NOT_FOUND, finance=DENIED, contact_id=_sample_contact_pk)
       for flow in ("metadata", "portal-link") for step in ("preview", "confirm")},
})


# --- the customer page and its timeline (console/views/customers.py) -------------------------------------
# Every role reads customers; an entry of another contact (or none) is 404.
ACCESS.update({
    "customers/<int:contact_id>/": [case(contact_id=_sample_contact_pk), case(contact_id="999999", **_NOT_THEIRS)],
    "customers/<int:contact_id>/timeline": [case(contact_id=_sample_contact_pk, query="filter=payments")],
    "customers/<int:contact_id>/timeline/<int:entry_id>": [
        case(contact_id=_sample_contact_pk, entry_id="999999", **_NOT_THEIRS)],
})

# --- failed logins django-axes counts, in Django admin (console/admin.py): view and unlock only -----


def _walk_login_attempt():
    from axes.models import AccessAttempt

    found = AccessAttempt.objects.filter(username="walk-locked").first() or AccessAttempt.objects.create(
        username="walk-locked", ip_address="192.0.2.1", user_agent="walk", http_accept="*/*", path_info="/login/",
        get_data="", post_data="", failures_since_start=9)
    return str(found.pk)


ACCESS.update(admin_model("axes", "accessattempt", _walk_login_attempt))

# --- the signed-in person's own settings (console/account.py) --------------------------------------
# Every role changes their own time zone; a POST of an unknown zone is a 400 that saves nothing.
ACCESS.update({
    "account/": [case(), case(method="post", data={"time_zone": "Not/AZone"}, agent=BAD_REQUEST,
                              finance=BAD_REQUEST, admin=BAD_REQUEST)],
})

# --- the signed-in person's own notifications (console/views/notifications.py) ---------------------
# Every role reads and marks read their own (none of another's can be named); anonymous: the login.
ACCESS.update({
    "notifications/": [case(), case(query="after=not-a-cursor")],
    "notifications/read/": post_only(ok=redirect("/notifications/")),
})


# --- workflows, the list and the editor (console/workflows/views.py): admins only -----------------
# Agents and finance are refused (403) before anything is looked up; writes are POSTs (GET: 405).


def _walk_workflow():
    from console.workflows import actions
    from console.workflows.models import Workflow
    from console.workflows.templates import CHARGEBACK_TICKET

    found = Workflow.objects.filter(name="Walk workflow").first()
    if found is None:
        found = actions.save_workflow(actor=get_user_model().objects.get(username="admin"), name="Walk workflow",
                                      definition=CHARGEBACK_TICKET).workflow
    return str(found.pk)


def admin_only(**kw) -> Case:
    return case(agent=DENIED, finance=DENIED, **kw)


def admin_post(ok: Expect, data=None, **kw) -> list[Case]:
    """A write for admins: GET is 405 for everyone logged in; POST answers `ok` to the admin."""
    return [case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, **kw),
            case(method="post", data=data or {}, agent=DENIED, finance=DENIED, admin=ok, **kw)]


_NO_WORKFLOW = admin_only(pk="999999", admin=NOT_FOUND)
ACCESS.update({
    "workflows/": [admin_only()],
    "workflows/new": [admin_only()],
    "workflows/<int:pk>/": [admin_only(pk=_walk_workflow), _NO_WORKFLOW],
    "workflows/<int:pk>/export": [admin_only(pk=_walk_workflow), admin_only(pk="999999", admin=NOT_FOUND)],
    # An editing operation answers the editor again; a test or a backtest of an empty draft says
    # what to fix (400); an import without a file or an unknown template is refused (400).
    "workflows/editor": admin_post(OK, {"op": "add-step:steps:action"}),
    "workflows/test": admin_post(BAD_REQUEST),
    "workflows/backtest": admin_post(BAD_REQUEST, {"days": "30"}),
    "workflows/import": admin_post(BAD_REQUEST),
    "workflows/install": admin_post(BAD_REQUEST, {"template": "no-such-template"}),
    "workflows/<int:pk>/activate": admin_post(redirect("/workflows/"), pk=_walk_workflow),
    "workflows/<int:pk>/deactivate": admin_post(redirect("/workflows/"), pk=_walk_workflow),
    "workflows/<int:pk>/duplicate": admin_post(Expect(302), pk=_walk_workflow),  # to the copy's editor
})


# --- the payment page and the disputes dashboard (console/views/payment.py, console/disputes/dashboard.py) --
# Every role reads a payment (an unknown one is 404); the dashboard is finance's and admins'.
ACCESS.update({
    "stripe/payments/<str:charge_id>/": [
        case(charge_id="ch_sample"), case(charge_id="cus_sample", agent=NOT_FOUND, finance=NOT_FOUND, admin=NOT_FOUND)],
    "disputes/insight/": [finance_and_admin()],
})


# --- the dispute queue and early fraud warnings (console/disputes/views.py) -------------------------------
# Everyone who reads disputes sees the queue and the warnings; finance and admins assign (agents 403).
# Assigning nothing is refused with a message, back on the queue.
ACCESS.update({
    "disputes/": [case(), case(query="group=respond&due=3&agentic=1&assignee=me&page=2")],
    "disputes/fraud-warnings/": [case(), case(query="page=2")],
    "disputes/assign": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED),
        case(method="post", data={"assign_to": "me"}, agent=DENIED, finance=redirect("/disputes/"),
             admin=redirect("/disputes/")),
    ],
})


# --- finance's refund approvals (console/views/approvals.py) ----------------------------------------------
# Finance and admins decide; agents (who ask) are refused before anything is looked up; an unknown
# request is 404. The approve flow is walked with one, so nothing reaches Stripe.
_NO_APPROVAL = {"approval_id": "999999", "agent": DENIED, "finance": NOT_FOUND, "admin": NOT_FOUND}
ACCESS.update({
    "approvals/": [finance_and_admin()],
    "approvals/<int:approval_id>/refund": [case(**_NO_APPROVAL)],
    **{f"approvals/<int:approval_id>/refund/{step}": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, approval_id="999999"),
        case(method="post", **_NO_APPROVAL)]
       for step in ("preview", "confirm")},
    "approvals/<int:approval_id>/decline": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, approval_id="999999"),
        case(method="post", data={"reason": "walk"}, **_NO_APPROVAL)],
})


# --- walking the URLconf --------------------------------------------------------------------------


def _normalize(route: str) -> str:
    """A route as the table spells it: regex groups become <name>, anchors and escapes go."""
    out, i = [], 0
    while i < len(route):
        if route.startswith("(?P<", i):
            end = route.index(">", i)
            name, depth, j = route[i + 4 : end], 1, end + 1
            while depth:
                if route[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(route[j], 0)
                j += 1
            out.append(f"<{name}>")
            i = j
        elif route[i] == "(" and not route.startswith("(?P<", i):
            # An unnamed group: optional ones ("inbound(_mime)?") are left out of the sample.
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(route[j], 0)
                j += 1
            if j < len(route) and route[j] == "?":
                i = j + 1
            else:
                out.append(route[i + 1 : j - 1])
                i = j
        elif route.startswith("\\Z", i):
            i += 2
        elif route[i] == "\\":
            out.append(route[i + 1])
            i += 2
        elif route[i] in "^$":
            i += 1
        else:
            out.append(route[i])
            i += 1
    return "".join(out)


def url_patterns(resolver: URLResolver | None = None, prefix: str = ""):
    """(route, pattern) for every URL pattern, following every include()."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        route = prefix + str(p.pattern).lstrip("^") if prefix else str(p.pattern)
        if isinstance(p, URLResolver):
            yield from url_patterns(p, route)
        elif isinstance(p, URLPattern):
            yield _normalize(route), p


def _fill(route: str, kwargs: dict) -> str:
    out = route
    for name, value in kwargs.items():
        value = value() if callable(value) else value
        for placeholder in (f"<{name}>", *(f"<{conv}:{name}>" for conv in ("str", "int", "slug", "path", "uuid"))):
            out = out.replace(placeholder, value)
    assert "<" not in out, f"{route}: no sample value for a parameter in {out}"
    return "/" + out


def _request(client: Client, route: str, c: Case):
    path = _fill(route, c.kwargs)
    match = resolve(path)
    assert _normalize(match.route) == route, f"sample {path} resolves to {match.route!r}, not {route!r}"
    full = f"{path}?{c.query}" if c.query else path
    send = getattr(client, c.method)
    response = send(full, c.data or {}) if c.method == "post" else send(full)
    return full, response


# The self-authenticating endpoints configured, so the walk sees them refuse a request
# without credentials (unconfigured, they answer 404).
WALK_SETTINGS = {
    "TICKETS_API_TOKEN": "walk-api-token",
    "LINE_CHANNEL_SECRET": "walk-line-secret",
    "ANYMAIL": {"WEBHOOK_SECRET": "walk:anymail-secret"},
    "TICKETS_INBOUND_EMAIL_ESPS": list(WALK_INBOUND_ESPS),
}


@pytest.fixture
def seeded(db, settings):
    for name, value in WALK_SETTINGS.items():
        setattr(settings, name, value)
    return seed_samples()


def seed_samples() -> dict:
    """One object of each kind the sample ids name, and a user per role (by role name)."""
    now = int(time.time())
    product = factories.RESOURCES["product"] | {"id": "prod_sample", "created": now}
    price = factories.RESOURCES["price"] | {"id": "price_sample", "product": "prod_sample", "created": now}
    factories.mirror(
        factories.CustomerFactory(id="cus_sample"), factories.ChargeFactory(id="ch_sample"),
        factories.RefundFactory(id="re_sample"), factories.DisputeFactory(id="dp_sample"),
        factories.SubscriptionFactory(id="sub_sample"), factories.InvoiceFactory(id="in_sample"),
        factories.PaymentIntentFactory(id="pi_sample"), factories.EarlyFraudWarningFactory(id="issfr_sample"),
        product, price,
    )
    store_event(factories.event("charge.succeeded", factories.ChargeFactory(id="ch_sample"), event_id="evt_sample"))
    SyncCursor.objects.create(name="reconcile", count=1)
    AuditEntry.objects.create(action="stripe_event.replay", target="evt_sample")
    return {
        "agent": factories.UserFactory(username="agent", role="agent"),
        "finance": factories.UserFactory(username="finance", role="finance"),
        "admin": factories.UserFactory(username="admin", role="admin"),
    }


# --- the tests ------------------------------------------------------------------------------------


def test_every_url_pattern_has_an_access_rule():
    routes = [route for route, _ in url_patterns()]
    missing = sorted(set(routes) - set(ACCESS))
    assert not missing, "URL patterns without an entry in ACCESS (say who may see them):\n" + "\n".join(missing)
    stale = sorted(set(ACCESS) - set(routes))
    assert not stale, "ACCESS entries for patterns that no longer exist:\n" + "\n".join(stale)


def test_only_public_patterns_let_anonymous_visitors_in():
    wrong = [
        f"{route}: anonymous {c.method.upper()} expects {c.expect['anonymous']}"
        for route, cases in ACCESS.items()
        if route not in PUBLIC
        for c in cases
        if not (c.expect["anonymous"] == LOGIN or (c.expect["anonymous"] == ADMIN_LOGIN and route.startswith("admin/")))
    ]
    assert not wrong, "\n".join(wrong)
    # The views themselves agree: only public ones opt out of LoginRequiredMiddleware.
    opted_out = sorted(
        route for route, p in url_patterns() if getattr(p.callback, "login_required", True) is False
    )
    assert set(opted_out) <= PUBLIC, f"views marked @login_not_required outside PUBLIC: {set(opted_out) - PUBLIC}"


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
@pytest.mark.parametrize("role", ROLES)
def test_walk_every_pattern(seeded, role, language):
    """Every pattern, as this role, reading the console in `language` (the browser's)."""
    failures, requests = [], 0
    # A 500 is a finding, reported with the rest.
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE=language)
    logged_in = False
    for route, _ in url_patterns():
        for c in ACCESS.get(route, []):
            if role != "anonymous" and not logged_in:
                client.force_login(seeded[role])
                logged_in = True
            full, response = _request(client, route, c)
            requests += 1
            cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
            if cookie is not None and not cookie.value:
                logged_in = False  # a logout ended the session: log in again for the next request
            problem = c.expect[role].problem(response, full)
            if problem:
                failures.append(f"{c.method.upper()} {full}: {problem}")
    assert requests > 100  # the walk reached the whole URLconf
    assert not failures, f"{role} ({language}):\n" + "\n".join(failures)


# --- workflow runs (console/workflows/run_views.py) ---------------------------------------------------
# Everyone who works tickets reads the runs that touched a ticket or a customer; a run that
# touched neither is the admins' (404 to others, as if absent); only admins retry.


def _walk_run(with_ticket: bool):
    def make():
        from console.workflows.models import WorkflowRun

        workflow_pk = int(_walk_workflow())
        key = f"walk:{with_ticket}"
        run = WorkflowRun.objects.filter(event_key=key).first()
        if run is None:
            from console.workflows.models import Workflow

            version = Workflow.objects.get(pk=workflow_pk).versions.first()
            run = WorkflowRun.objects.create(
                workflow_id=workflow_pk, version=version, event_key=key, trigger=version.trigger,
                status=WorkflowRun.Status.FAILED, error="walk",
                ticket_id=_sample_message().ticket_id if with_ticket else None,
                contact_id=_sample_message().ticket.requester_id if with_ticket else None)
        return str(run.pk)
    return make


ACCESS.update({
    "workflows/runs/": [case(), case(query="status=failed&workflow=x&page=-3&ticket=9e99")],
    "workflows/runs/<int:run_id>/": [
        case(run_id=_walk_run(True)),
        case(run_id=_walk_run(False), agent=NOT_FOUND, finance=NOT_FOUND),
        case(run_id="999999", agent=NOT_FOUND, finance=NOT_FOUND, admin=NOT_FOUND),
    ],
    "workflows/runs/<int:run_id>/retry": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, run_id=_walk_run(True)),
        case(method="post", agent=DENIED, finance=DENIED, admin=Expect(302), run_id=_walk_run(True)),
    ],
})


# --- one dispute: its page, evidence and accept flows (console/disputes/page.py) --------------------------
# Everyone who reads disputes reads the page; finance and admins act (agents 403 before anything is
# looked up); an unknown dispute is 404 (the flows are walked with one, so nothing reaches Stripe).
_NO_DISPUTE = {"finance": NOT_FOUND, "admin": NOT_FOUND}
ACCESS.update({
    "disputes/<str:dispute_id>/": [case(dispute_id="dp_sample"),
                                   case(dispute_id="dp_none", agent=NOT_FOUND, **_NO_DISPUTE)],
    "disputes/<str:dispute_id>/ticket": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, dispute_id="dp_none"),
        case(method="post", agent=DENIED, dispute_id="dp_none", **_NO_DISPUTE)],
    **{f"disputes/<str:dispute_id>/{flow}": [case(dispute_id="dp_none", agent=DENIED, **_NO_DISPUTE)]
       for flow in ("evidence", "accept")},
    **{f"disputes/<str:dispute_id>/{flow}/{step}": [
        case(agent=NOT_ALLOWED, finance=NOT_ALLOWED, admin=NOT_ALLOWED, dispute_id="dp_none"),
        case(method="post", agent=DENIED, dispute_id="dp_none", **_NO_DISPUTE)]
       for flow in ("evidence", "accept") for step in ("preview", "confirm")},
})
