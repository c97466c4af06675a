"""The demo's support inbox, seeded through the real channels.

After the shop's Stripe account is in the mirror, some of its shoppers write in about what
the mirror shows of them: a double charge that was refunded, a refund they cannot find, a
subscription charge after cancelling, a chargeback, a declined card... Each story picks the
first shopper whose Stripe data fits it, so the panel beside the ticket tells the same story.

Everything a customer does goes over HTTP to the running console, as in production:
email through django-anymail's inbound webhook (Postmark's JSON with the raw message, basic
auth), LINE through `POST /line/webhook/` signed with the channel secret, and the shop's
"connect your LINE account" step through `POST /api/contacts/link`. Everything an agent does
goes through tickets.actions as one of the demo users. Replies never leave the machine: email
goes to Django's locmem backend here (the server prints its own to its log), LINE pushes to
`line_api.LineApiStandIn`, which accepts them and writes them to a log.

The ingestion paths stamp messages with the time they arrive (a message's Date header and a
LINE event's timestamp are not used), so every seeded ticket is from the last few seconds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import secrets
import struct
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Callable

import requests

from console.demo.seed import DemoError

# The shop's LINE official account, as LINE names it in every webhook body.
BOT_USER_ID = "U" + hashlib.sha256(b"kissa-roasters-official-account").hexdigest()[:32]
INBOUND_ESP = "postmark"


# --- the channels' credentials and the LINE API stand-in -----------------------------------


@dataclass(frozen=True)
class ChannelSecrets:
    """The console's channel credentials for one demo run: generated, handed to the server in
    its environment, never printed."""

    line_channel_secret: str
    line_access_token: str
    inbound_auth: str  # anymail's webhook basic auth, "user:password"
    api_token: str

    @classmethod
    def generate(cls) -> "ChannelSecrets":
        return cls(
            line_channel_secret=secrets.token_hex(16),
            line_access_token=secrets.token_urlsafe(32),
            inbound_auth=f"{INBOUND_ESP}:{secrets.token_urlsafe(18)}",
            api_token=secrets.token_urlsafe(24),
        )

    def server_env(self, line_api_url: str) -> dict[str, str]:
        """What the demo's web server needs to accept the channels and reply on them."""
        return {
            "LINE_CHANNEL_SECRET": self.line_channel_secret,
            "LINE_CHANNEL_ACCESS_TOKEN": self.line_access_token,
            "LINE_API_BASE": line_api_url,
            "TICKETS_INBOUND_EMAIL_ESPS": INBOUND_ESP,
            "ANYMAIL_WEBHOOK_SECRET": self.inbound_auth,
            "TICKETS_API_TOKEN": self.api_token,
            # Set even if the shell has an SMTP backend configured: the demo never sends real
            # email; agents' replies are printed into the server log instead.
            "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        }


# --- what the mirror knows about each shopper ------------------------------------------------


@dataclass
class ShopperFile:
    """One shopper as the mirror holds them: what a story needs to ring true."""

    index: int  # the order the shop signed them up in (its customer number)
    customer: str
    name: str
    email: str
    japanese: bool
    charges: list = field(default_factory=list)  # payments.models.Charge, oldest first
    refunds: list = field(default_factory=list)
    disputes: list = field(default_factory=list)
    subscriptions: list = field(default_factory=list)

    @property
    def line_user_id(self) -> str:
        """Their LINE user id: made up, but the same for the same shopper in every run."""
        return "U" + hashlib.sha256(f"line:{self.email}".encode()).hexdigest()[:32]

    @property
    def greeting_name(self) -> str:
        """'Zoe' in English; '佐藤様' (family name and the polite suffix) in Japanese."""
        return f"{self.name.split()[0]}様" if self.japanese else self.name.split()[0]

    def orders(self) -> list:
        """Successful one-off payments (not a subscription's invoice)."""
        return [c for c in self.charges if c.status == "succeeded" and not c.invoice]

    def failed(self) -> list:
        return [c for c in self.charges if c.status == "failed" and not c.invoice]

    def charge(self, charge_id: str):
        return next(c for c in self.charges if c.pk == charge_id)

    def refund(self, fits: Callable) -> object | None:
        return next((r for r in self.refunds if fits(r, self.charge(r.charge))), None)

    def dispute(self, statuses: tuple[str, ...], reasons: tuple[str, ...] = ()) -> object | None:
        return next((d for d in self.disputes if d.status in statuses and (not reasons or d.reason in reasons)), None)

    def subscription(self, status: str, ending: bool = False) -> object | None:
        return next((s for s in self.subscriptions if s.status == status and s.cancel_at_period_end == ending), None)


def load_shoppers() -> list[ShopperFile]:
    """Every mirrored customer with their payments, refunds, disputes and subscriptions, in the
    order the shop numbered them (so a story picks the same shopper in every run)."""
    from payments.models import Charge, Customer, Dispute, Refund, Subscription

    files = {}
    for c in Customer.objects.filter(deleted=False):
        number = (c.data.get("metadata") or {}).get("shop_customer_id", "")
        locales = c.data.get("preferred_locales") or []
        files[c.pk] = ShopperFile(
            index=int(number[2:]) if number.startswith("C-") and number[2:].isdigit() else 10**9,
            customer=c.pk, name=c.name, email=c.email,
            japanese=any(locale.startswith("ja") for locale in locales),
        )
    owner = {}
    for charge in Charge.objects.filter(customer__in=files).order_by("created", "id"):
        files[charge.customer].charges.append(charge)
        owner[charge.pk] = files[charge.customer]
    for refund in Refund.objects.filter(charge__in=owner).order_by("created", "id"):
        owner[refund.charge].refunds.append(refund)
    for dispute in Dispute.objects.filter(charge__in=owner).order_by("created", "id"):
        owner[dispute.charge].disputes.append(dispute)
    for sub in Subscription.objects.filter(customer__in=files).order_by("created", "id"):
        files[sub.customer].subscriptions.append(sub)
    return sorted(files.values(), key=lambda f: (f.index, f.email))


# --- words -------------------------------------------------------------------------------------


def _money(amount: int, currency: str) -> str:
    from payments.money import format_money

    return format_money(amount, currency)


def _paid(obj) -> str:
    return _money(obj.amount, obj.currency)


def _order(charge) -> str:
    return (charge.data.get("metadata") or {}).get("order_id") or charge.description or charge.pk


def _card(charge, japanese: bool = False) -> str:
    card = (charge.data.get("payment_method_details") or {}).get("card") or {}
    brand = {"jcb": "JCB", "mastercard": "Mastercard"}.get(card.get("brand"), (card.get("brand") or "card").title())
    last4 = card.get("last4") or "····"
    return f"末尾{last4}の{brand}カード" if japanese else f"{brand} ending {last4}"


def _day(moment: dt.datetime | None, japanese: bool = False) -> str:
    if moment is None:
        return ""
    return f"{moment.month}月{moment.day}日" if japanese else f"{moment:%b} {moment.day}"


def _plan(sub) -> str:
    items = (sub.data.get("items") or {}).get("data") or [{}]
    plan = items[0].get("plan") or items[0].get("price") or {}
    return plan.get("nickname") or "subscription"


def _arn(refund) -> str:
    return ((refund.data.get("destination_details") or {}).get("card") or {}).get("reference") or ""


def _note(refund) -> str:
    return (refund.data.get("metadata") or {}).get("note") or ""


def _photo(width: int = 96, height: int = 72) -> bytes:
    """A small PNG, a warm gradient: the 'photo' a shopper attaches of a damaged item."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (150 + x // 2, 100 + y, 60 + (x + y) // 4))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


EN_SIGN = "Yui\nKissa Roasters support"
JA_SIGN = "Kissa Roasters サポート 中村"


# --- the desk: customers write over HTTP, agents act through tickets.actions -----------------


@dataclass
class TicketReport:
    stories: list[str] = field(default_factory=list)  # "story: shopper email"


class Desk:
    def __init__(self, base_url: str, channel_secrets: ChannelSecrets, support_address: str):
        from django.contrib.auth import get_user_model

        self.base_url = base_url.rstrip("/")
        self.secrets = channel_secrets
        self.support_address = support_address
        self.session = requests.Session()
        users = get_user_model().objects.filter(username__in=["agent", "finance", "admin", "agent_ja"])
        self.users = {u.username: u for u in users}
        if len(self.users) != 4:
            raise DemoError("the demo users must exist before the tickets are seeded")
        self.line_message_ids = itertools.count(500_000_000_000_000_000 + secrets.randbelow(10**15))
        self.teams = {}
        self.report = TicketReport()

    # the customers' side: over HTTP, as the channels deliver -------------------------------

    def email(self, s: ShopperFile, subject: str, body: str, *, answering=None, attachments=()):
        """The shopper emails support; `answering` is our reply they answer (threads by
        In-Reply-To and References, as their mail client would). Returns the ticket."""
        from tickets.models import Channel, Message

        msg = EmailMessage(policy=default_policy.clone(cte_type="7bit"))  # ASCII on the wire, as MTAs like it
        msg["From"] = formataddr((s.name, s.email))
        msg["To"] = self.support_address
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=s.email.rpartition("@")[2])
        if answering is not None:
            thread = [*answering.headers.get("references", []), answering.channel_message_id]
            msg["In-Reply-To"] = f"<{answering.channel_message_id}>"
            msg["References"] = " ".join(f"<{ref}>" for ref in thread if ref)
        msg.set_content(body)
        for filename, content, mimetype in attachments:
            maintype, _, subtype = mimetype.partition("/")
            msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
        payload = {  # Postmark's inbound JSON, with the raw message ("Include raw email content")
            "MessageID": str(uuid.uuid4()), "From": s.email, "To": parseaddr(self.support_address)[1],
            "Subject": subject, "Headers": [], "RawEmail": msg.as_string(),
        }
        user, _, password = self.secrets.inbound_auth.partition(":")
        self._post(f"/anymail/{INBOUND_ESP}/inbound/", "the inbound email webhook", json=payload, auth=(user, password))
        stored = Message.objects.filter(channel=Channel.EMAIL, channel_message_id=msg["Message-ID"].strip("<>"))
        return self._ticket_of(stored, f"the email from {s.email}")

    def line(self, user_id: str, text: str = "", *, sticker: bool = False):
        """The LINE user sends a text (or a sticker). Returns the ticket."""
        from tickets.models import Channel, Message

        message_id = str(next(self.line_message_ids))
        if sticker:
            message = {"id": message_id, "type": "sticker", "quoteToken": secrets.token_urlsafe(24),
                       "packageId": "11537", "stickerId": "52002734", "stickerResourceType": "STATIC",
                       "keywords": ["thanks"]}
        else:
            message = {"id": message_id, "type": "text", "quoteToken": secrets.token_urlsafe(24), "text": text}
        self._post_line(self._line_event("message", user_id, message=message, replyToken=secrets.token_hex(16)))
        stored = Message.objects.filter(channel=Channel.LINE, channel_message_id=message_id)
        return self._ticket_of(stored, f"the LINE message from {user_id}")

    def follow(self, user_id: str) -> None:
        """The LINE user adds the shop's official account as a friend."""
        self._post_line(self._line_event("follow", user_id, follow={"isUnblocked": False},
                                         replyToken=secrets.token_hex(16)))

    def connect_line(self, s: ShopperFile, user_id: str) -> dict:
        """The shop's "connect your LINE account" step: its site tells Paydesk that this LINE
        user is the customer with this email (seed 003's ID link)."""
        body = {"contact": {"kind": "email", "value": s.email}, "identity": {"kind": "line", "value": user_id},
                "name": s.name}
        response = self._post("/api/contacts/link", "the contacts link API", json=body,
                              headers={"Authorization": f"Bearer {self.secrets.api_token}"})
        return response.json()

    def _line_event(self, kind: str, user_id: str, **fields) -> dict:
        return {
            "type": kind, "mode": "active", "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": "01" + secrets.token_hex(12).upper(),
            "deliveryContext": {"isRedelivery": False}, **fields,
        }

    def _post_line(self, *events: dict) -> None:
        from tickets.models import LineEvent

        body = json.dumps({"destination": BOT_USER_ID, "events": list(events)}, ensure_ascii=False).encode()
        digest = hmac.new(self.secrets.line_channel_secret.encode(), body, hashlib.sha256).digest()
        self._post("/line/webhook/", "the LINE webhook", data=body,
                   headers={"Content-Type": "application/json; charset=utf-8",
                            "X-Line-Signature": base64.b64encode(digest).decode()})
        ids = [e["webhookEventId"] for e in events]
        done = LineEvent.objects.filter(webhook_event_id__in=ids, status=LineEvent.Status.PROCESSED).count()
        if done != len(ids):
            raise DemoError(f"the LINE webhook accepted {len(ids)} event(s) but processed {done}; see the server log")

    def _post(self, path: str, what: str, **kwargs) -> requests.Response:
        response = self.session.post(f"{self.base_url}{path}", timeout=30, **kwargs)
        if response.status_code != 200:
            raise DemoError(f"{what} answered {response.status_code}: {response.text[:200]}")
        return response

    def _ticket_of(self, stored, what: str):
        message = stored.select_related("ticket").first()
        if message is None:
            raise DemoError(f"{what} was accepted but stored nothing; see the server log")
        return message.ticket

    # the agents' side: tickets.actions, as the ticket page calls them --------------------------

    def reply(self, ticket, who: str, body: str, status: str | None = None):
        from tickets import actions

        return actions.reply(actor=self.users[who], ticket=ticket.pk, body=body, status=status)

    def note(self, ticket, who: str, body: str) -> None:
        from tickets import actions

        actions.add_note(actor=self.users[who], ticket=ticket.pk, body=body)

    def ask_finance(self, ticket, who: str, charge, note: str) -> None:
        """The agent tries to refund the whole charge, is over their limit, and hands it to
        finance, as the panel's "Ask finance to refund it" does."""
        from console import actions as console_actions
        from payments.actions import refunds
        from payments.errors import RefundLimitExceeded

        actor = self.users[who]
        try:
            refunds.plan_refund(charge.pk, actor=actor, amount=charge.amount, currency=charge.currency)
        except RefundLimitExceeded as refused:
            console_actions.request_refund_approval(
                actor=actor, ticket=ticket, charge_id=charge.pk, amount=charge.amount, currency=charge.currency,
                reason="requested_by_customer", note=note, refusal=refused.message, token=uuid.uuid4().hex)
        else:
            raise DemoError(f"{charge.pk} is within {who}'s refund limit; the story needs one above it")

    def triage(self, ticket, who: str = "agent", *, priority: str = "", assignee: str = "", team: str = "",
               tags: tuple[str, ...] = ()) -> None:
        """What an agent does on first reading: priority, tags, who and which team owns it."""
        from tickets import actions

        actor = self.users[who]
        if priority:
            actions.set_priority(actor=actor, ticket=ticket.pk, priority=priority)
        if tags:
            actions.set_tags(actor=actor, ticket=ticket.pk, add=tags)
        if assignee or team:
            actions.assign(actor=actor, ticket=ticket.pk,
                           assignee=self.users[assignee] if assignee else actions.UNSET,
                           team=self.teams[team] if team else actions.UNSET)

    def set_status(self, ticket, who: str, status: str) -> None:
        from tickets import actions

        actions.set_status(actor=self.users[who], ticket=ticket.pk, status=status)

    def make_teams(self) -> None:
        self.teams = ensure_teams(self.users)


def ensure_teams(users: dict) -> dict:
    """Finance (disputes, card trouble and refunds above an agent's limit) and Japan (the
    Japanese queue), by slug; made once (the workflows route tickets to them from the first event)."""
    from tickets import actions
    from tickets.models import Team

    teams = {}
    for name, slug, members in [("Finance", "finance", ["finance", "admin"]), ("Japan", "japan", ["agent"]),
                                ("Billing", "billing", ["agent", "finance"])]:
        teams[slug] = Team.objects.filter(slug=slug).first() or actions.save_team(
            actor=users["admin"], team=Team(name=name, slug=slug), members=[users[m] for m in members])
    return teams


# --- the stories ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    key: str
    channel: str  # how the shopper first writes: "email" or "line"
    japanese: bool  # told in Japanese (by a shopper in Japan), else in English
    topic: str  # what in Stripe it is about: a shopper tells at most one story per topic
    fits: Callable[[ShopperFile], bool]
    play: Callable[[Desk, ShopperFile], None]


def _full_refund(r, charge) -> bool:
    return r.amount == charge.amount and r.reason != "fraudulent"


def _damage_refund(r, charge) -> bool:
    return r.amount < charge.amount and _note(r).startswith(("Arrived damaged", "破損"))


OPEN_DISPUTE = ("needs_response", "warning_needs_response", "under_review")


def charged_twice(desk: Desk, s: ShopperFile) -> None:
    r = s.refund(_duplicate_refund)
    charge = s.charge(r.charge)
    t = desk.email(s, "Charged twice for one order", (
        f"Hi,\n\nMy card statement shows two charges of {_paid(charge)} from KISSA ROASTERS, but I only "
        f"placed one order ({_order(charge)}). Can you refund the extra one?\n\nThanks,\n{s.name}"))
    desk.triage(t, priority="high", assignee="agent", tags=("refund", "duplicate-charge"))
    desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nYou're right, and I'm sorry: checkout charged your {_card(charge)} twice. "
        f"I've refunded the extra {_paid(r)} in full. Your bank's reference for it is {_arn(r)}; it usually "
        f"shows on the statement within 5-10 business days.\n\n{EN_SIGN}"), status="solved")


def where_is_my_refund(desk: Desk, s: ShopperFile) -> None:
    r = s.refund(_changed_mind_refund)
    charge = s.charge(r.charge)
    t = desk.email(s, "Where is my refund?", (
        f"Hello,\n\nI cancelled order {_order(charge)} before it shipped and got an email saying it was "
        f"refunded, but I don't see {_paid(r)} back on my card. Where is it?\n\n{s.name}"))
    desk.triage(t, tags=("refund",))
    ours = desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nThe refund of {_paid(r)} for {_order(charge)} went back to your "
        f"{_card(charge)} on {_day(r.created)}. Banks take 5-10 business days to show it; if it isn't there "
        f"by then, give them this reference and they can trace it: {_arn(r)}.\n\n{EN_SIGN}"), status="pending")
    t = desk.email(s, f"Re: {ours.subject}", "Found it on my statement this morning. Thanks for the quick answer!",
                   answering=ours)
    desk.set_status(t, "agent", "solved")


def damaged_item(desk: Desk, s: ShopperFile) -> None:
    r = s.refund(_damage_refund)
    charge, item = s.charge(r.charge), _note(r).partition(": ")[2] or "item"
    t = desk.email(s, f"{item} arrived broken", (
        f"Hi there,\n\nOrder {_order(charge)} came today and the {item} was broken in the box. Photo attached. "
        f"The rest of the order is fine.\n\n{s.name}"), attachments=[("broken.png", _photo(), "image/png")])
    desk.triage(t, tags=("damaged", "refund"))
    desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nSorry it arrived like that, and thanks for the photo. I've refunded "
        f"{_paid(r)} to your {_card(charge)} for the damaged {item}; no need to send it back. Would you like "
        f"us to send a new one as well?\n\n{EN_SIGN}"), status="pending")


def charged_after_cancelling(desk: Desk, s: ShopperFile) -> None:
    sub = s.subscription("canceled")
    paid = next((c for c in s.charges if c.invoice and c.status == "succeeded"), None)
    amount = f" {_paid(paid)}" if paid else ""
    t = desk.email(s, "Why was I charged? I cancelled", (
        f"Hi,\n\nI cancelled my {_plan(sub)} but I see a charge of{amount} from KISSA ROASTERS. Why was I "
        f"charged after cancelling? Please refund it.\n\n{s.name}"))
    desk.triage(t, priority="high", assignee="agent", tags=("subscription", "refund"))


def dispute_not_received(desk: Desk, s: ShopperFile) -> None:
    d = s.dispute(OPEN_DISPUTE + ("won", "lost"), ("product_not_received",))
    charge = s.charge(d.charge)
    t = desk.email(s, f"Order {_order(charge)} never arrived", (
        f"Hello,\n\nMy order {_order(charge)} ({_paid(charge)}) never arrived and nobody answered my last "
        f"email, so I asked my bank to get my money back.\n\n{s.name}"))
    desk.triage(t, priority="urgent", assignee="finance", team="finance", tags=("dispute", "shipping"))
    due = f", evidence due {_day(d.due_by)}" if d.due_by and d.status in OPEN_DISPUTE else ""
    desk.note(t, "finance", (
        f"The bank opened a chargeback for this order: {d.reason.replace('_', ' ')}, {d.status.replace('_', ' ')}"
        f"{due}. Carrier tracking says delivered; I'll submit it as evidence from the dispute queue."))


def dispute_unrecognised(desk: Desk, s: ShopperFile) -> None:
    d = s.dispute(OPEN_DISPUTE)
    charge = s.charge(d.charge)
    t = desk.email(s, "I disputed a charge by mistake", (
        f"Hi,\n\nI didn't recognise \"KISSA ROASTERS\" on my statement ({_paid(charge)}) and reported it to my "
        f"bank. Turns out it was my coffee order {_order(charge)}! How do I cancel the dispute?\n\n{s.name}"))
    desk.triage(t, priority="high", team="finance", tags=("dispute",))


def card_declined(desk: Desk, s: ShopperFile) -> None:
    charge = s.failed()[0]
    t = desk.email(s, "Card declined at checkout", (
        f"Hi,\n\nI tried to pay for my order and my card was declined, but my bank says the card is fine. "
        f"What's going on?\n\n{s.name}"))
    desk.triage(t, tags=("card-declined",))
    reason = charge.data.get("failure_message") or "declined"
    desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nWe never see your card details, but the bank's answer to the payment of "
        f"{_paid(charge)} was: \"{reason}\" Please call the number on the back of the card, or try another "
        f"card; the basket is still saved in your account.\n\n{EN_SIGN}"), status="pending")


def update_my_card(desk: Desk, s: ShopperFile) -> None:
    sub = s.subscription("incomplete")
    t = desk.email(s, "Please update my card", (
        f"Hi,\n\nMy {_plan(sub)} payment failed because my old card was replaced by the bank. Can you "
        f"switch the subscription to my new card?\n\n{s.name}"))
    desk.triage(t, team="finance", tags=("subscription", "card"))


def cancel_my_subscription(desk: Desk, s: ShopperFile) -> None:
    sub = s.subscription("active")
    t = desk.email(s, "Cancel my subscription", (
        f"Hello,\n\nPlease cancel my {_plan(sub)}. We've been travelling and the bags are piling up. "
        f"Thanks for the great coffee!\n\n{s.name}"))
    desk.triage(t, assignee="agent", tags=("subscription", "cancel"))


def last_box(desk: Desk, s: ShopperFile) -> None:
    sub = s.subscription("active", ending=True)
    t = desk.email(s, "Will I still get this month's box?", (
        f"Hi,\n\nI cancelled my {_plan(sub)} last week. Will I still get the box I've already paid for?\n\n{s.name}"))
    desk.triage(t, tags=("subscription",))
    desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nYes: your subscription stays active until {_day(sub.current_period_end)}, "
        f"so the box you've paid for ships as usual, and nothing is charged after that.\n\n{EN_SIGN}"),
        status="pending")


def two_charges(desk: Desk, s: ShopperFile) -> None:
    first, second = s.orders()[:2]
    t = desk.email(s, "Two charges on my card?", (
        f"Hi,\n\nI see two charges from KISSA ROASTERS, {_paid(first)} and {_paid(second)}. Was I charged "
        f"twice?\n\n{s.name}"))
    desk.triage(t, priority="low", assignee="agent", tags=("billing-question",))
    ours = desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nThose are two separate orders on your account: {_order(first)} "
        f"({_paid(first)}) and {_order(second)} ({_paid(second)}), each shipped on its own. Nothing was charged "
        f"twice, but tell me if you don't recognise one of them.\n\n{EN_SIGN}"), status="pending")
    t = desk.email(s, f"Re: {ours.subject}", "Ah, my partner placed the second one. Sorry for the trouble!",
                   answering=ours)
    desk.set_status(t, "agent", "solved")


def lost_parcel(desk: Desk, s: ShopperFile) -> None:
    """The carrier lost a big order; the agent may not refund that much and asks finance, so
    /approvals/ has a request waiting (approve it as finance to see the loop close)."""
    charge = _big_order(s)
    t = desk.email(s, f"Order {_order(charge)} lost by the carrier", (
        f"Hello,\n\nThe tracking for order {_order(charge)} ({_paid(charge)}) has said \"exception: parcel lost\" "
        f"for a week and the carrier told me to ask you for a refund. Could you refund the order?\n\n{s.name}"))
    desk.triage(t, priority="high", assignee="agent", tags=("shipping", "refund"))
    desk.ask_finance(t, "agent", charge, "Carrier confirmed the parcel lost (tracking: exception)")
    desk.reply(t, "agent", (
        f"Hi {s.greeting_name},\n\nI'm sorry the parcel went missing. I've asked our finance team to refund "
        f"{_paid(charge)} for {_order(charge)} in full; you'll hear from us as soon as it's on its way.\n\n"
        f"{EN_SIGN}"), status="pending")


def where_is_my_order(desk: Desk, s: ShopperFile) -> None:
    charge = s.orders()[-1]
    t = desk.email(s, f"Where is my order {_order(charge)}?", (
        f"Hi,\n\nI ordered {charge.description.partition(': ')[2] or 'coffee'} and haven't had a shipping "
        f"email yet. When will it ship?\n\n{s.name}"))
    desk.triage(t, priority="low", tags=("shipping",))


def ja_dispute(desk: Desk, s: ShopperFile) -> None:
    d = s.dispute(OPEN_DISPUTE)
    charge = s.charge(d.charge)
    t = desk.email(s, "カード会社への異議申し立てについて", (
        f"Kissa Roasters ご担当者様\n\nカードの明細に「KISSA ROASTERS」{_paid(charge)} の請求があり、身に覚えがなかったため"
        f"カード会社に連絡してしまいました。確認したところ、家族が注文したもの（{_order(charge)}）でした。"
        f"申し立てを取り下げるにはどうすればよいでしょうか。\n\n{s.name}"))
    desk.triage(t, priority="high", team="finance", tags=("dispute",))


def ja_damaged(desk: Desk, s: ShopperFile) -> None:
    r = s.refund(_damage_refund)
    charge, item = s.charge(r.charge), _note(r).partition(": ")[2] or "商品"
    t = desk.email(s, f"{item}が破損して届きました", (
        f"お世話になっております。\n\n本日届いた注文（{_order(charge)}）の{item}が割れていました。写真を添付します。"
        f"\n\n{s.name}"), attachments=[("hason.png", _photo(), "image/png")])
    desk.triage(t, team="japan", tags=("damaged", "refund"))
    desk.reply(t, "agent", (
        f"{s.greeting_name}\n\nご不便をおかけし申し訳ございません。写真もありがとうございます。{item}の代金 {_paid(r)} を"
        f"{_card(charge, japanese=True)}へ返金いたしました。商品のご返送は不要です。\n\n{JA_SIGN}"), status="solved")


def _connected(desk: Desk, s: ShopperFile) -> str:
    """The shopper connected LINE on the shop's site, then added the official account."""
    desk.connect_line(s, s.line_user_id)
    desk.follow(s.line_user_id)
    return s.line_user_id


def line_refund(desk: Desk, s: ShopperFile) -> None:
    r = s.refund(_full_refund)
    charge = s.charge(r.charge)
    user = _connected(desk, s)
    t = desk.line(user, f"{_order(charge)} の返金はいつ届きますか？")
    desk.triage(t, team="japan", tags=("refund",))
    desk.reply(t, "agent", (
        f"{s.greeting_name}、お問い合わせありがとうございます。{_order(charge)} の {_paid(r)} は {_day(r.created, True)} に"
        f"{_card(charge, japanese=True)}へ返金済みです。明細への反映はカード会社により5〜10営業日ほどかかります。"
        f"\n{JA_SIGN}"), status="pending")
    desk.line(user, "確認できました。ありがとうございます！")
    desk.line(user, sticker=True)
    desk.set_status(t, "agent", "solved")


def line_cancel(desk: Desk, s: ShopperFile) -> None:
    sub = s.subscription("active")
    user = _connected(desk, s)
    t = desk.line(user, f"「{_plan(sub).split(' — ')[0]}」を今月で解約したいです。手続きをお願いできますか？")
    desk.triage(t, assignee="agent_ja", team="japan", tags=("subscription", "cancel"))


def line_declined(desk: Desk, s: ShopperFile) -> None:
    charge = s.failed()[0]
    user = _connected(desk, s)
    t = desk.line(user, "カードで支払おうとしたらエラーになりました。どうすればいいですか？")
    desk.triage(t, assignee="agent_ja", team="japan", tags=("card-declined",))
    desk.reply(t, "agent_ja", (
        f"{s.greeting_name}、ご連絡ありがとうございます。{_paid(charge)} のお支払いはカード会社により承認されませんでした。"
        f"お手数ですがカード会社にご確認いただくか、別のカードでお試しください。\n{JA_SIGN}"), status="pending")


def line_where(desk: Desk, s: ShopperFile) -> None:
    charge = s.orders()[-1]
    user = _connected(desk, s)
    desk.line(user, "こんにちは")
    t = desk.line(user, f"注文した商品（{_order(charge)}）がまだ届きません。いつ頃になりますか？")
    desk.triage(t, team="japan", tags=("shipping",))


def line_not_connected(desk: Desk, s: ShopperFile) -> None:
    """Never connected LINE: the ticket starts on a contact of its own with no Stripe customer,
    until an agent links the email the shopper gives (the link on the contact panel)."""
    charge = s.orders()[0]
    desk.follow(s.line_user_id)
    t = desk.line(s.line_user_id, (
        f"届いたドリップバッグの種類が注文と違いました。注文番号は {_order(charge)}、"
        f"注文したときのメールアドレスは {s.email} です。"))
    desk.triage(t, team="japan", tags=("wrong-item",))


def both_channels(desk: Desk, s: ShopperFile) -> None:
    """Seed 003's problem: the same shopper writes by LINE (not yet connected) and by email.
    Connecting LINE afterwards merges the LINE-only contact into the one with her email and
    her Stripe customer, so both tickets are one person's."""
    sub = next(iter(s.subscriptions), None)
    plan = _plan(sub).split(" — ")[0] if sub else "定期便"
    desk.follow(s.line_user_id)
    line_ticket = desk.line(s.line_user_id, f"{plan}の次回のお届け日を15日以降に変更できますか？")
    email_ticket = desk.email(s, f"{plan}のお届け日について", (
        f"いつもお世話になっております。{s.name}です。\n\n先ほどLINEでもお送りしましたが、{plan}の次回のお届けを"
        f"15日以降に変更していただけますでしょうか。\n\nよろしくお願いいたします。"))
    desk.connect_line(s, s.line_user_id)
    desk.triage(email_ticket, team="japan")
    desk.note(email_ticket, "agent",
              f"Same request as LINE ticket #{line_ticket.number} (now one contact). Answering there.")
    desk.set_status(email_ticket, "agent", "solved")
    desk.triage(line_ticket, assignee="agent_ja", team="japan", tags=("subscription", "delivery-date"))
    desk.reply(line_ticket, "agent_ja", (
        f"{s.greeting_name}、メールとLINEでご連絡ありがとうございます。{plan}の次回のお届けを15日以降に変更いたしました。"
        f"\n{JA_SIGN}"), status="pending")
    desk.line(s.line_user_id, "ありがとうございます！助かります。")


def _duplicate_refund(r, charge) -> bool:
    return r.reason == "duplicate"


def _changed_mind_refund(r, charge) -> bool:
    return _full_refund(r, charge) and r.reason != "duplicate"


def _has_refund(fits: Callable) -> Callable[[ShopperFile], bool]:
    return lambda s: s.refund(fits) is not None


def _has_dispute(statuses: tuple[str, ...], reasons: tuple[str, ...] = ()) -> Callable[[ShopperFile], bool]:
    return lambda s: s.dispute(statuses, reasons) is not None


def _has_subscription(status: str, ending: bool = False) -> Callable[[ShopperFile], bool]:
    return lambda s: s.subscription(status, ending) is not None


def _orders(at_least: int = 1, clean: bool = False) -> Callable[[ShopperFile], bool]:
    """At least this many paid orders (and, if `clean`, no refund nor dispute to muddle them)."""
    return lambda s: len(s.orders()) >= at_least and not (clean and (s.refunds or s.disputes))


def _agent_limit(currency: str) -> int | None:
    """What the demo's agents may refund on their own in `currency` (None: no limit)."""
    from django.conf import settings

    limits = settings.PAYMENTS_REFUND_LIMITS.get("agent", {})
    return None if limits is None else limits.get(currency, limits.get("*", 0))


def _big_order(s: ShopperFile):
    """A paid, untouched order above what an agent may refund alone."""
    return next((c for c in s.orders() if not c.amount_refunded and not c.disputed
                 and (_agent_limit(c.currency) or 0) < c.amount and _agent_limit(c.currency) is not None), None)


def _declined(s: ShopperFile) -> bool:
    return bool(s.failed())


BOTH_CHANNELS = Story("both_channels", "line", True, "subscription", lambda s: True, both_channels)
STORIES = [  # the scarcest data first, so the generic stories don't take the shoppers it needs
    Story("charged_twice", "email", False, "refund", _has_refund(_duplicate_refund), charged_twice),
    Story("charged_after_cancelling", "email", False, "subscription", _has_subscription("canceled"),
          charged_after_cancelling),
    Story("dispute_not_received", "email", False, "dispute",
          _has_dispute(OPEN_DISPUTE + ("won", "lost"), ("product_not_received",)), dispute_not_received),
    Story("ja_dispute", "email", True, "dispute", _has_dispute(OPEN_DISPUTE), ja_dispute),
    Story("dispute_unrecognised", "email", False, "dispute", _has_dispute(OPEN_DISPUTE), dispute_unrecognised),
    Story("line_refund", "line", True, "refund", _has_refund(_full_refund), line_refund),
    Story("where_is_my_refund", "email", False, "refund", _has_refund(_changed_mind_refund), where_is_my_refund),
    Story("damaged_item", "email", False, "refund", _has_refund(_damage_refund), damaged_item),
    Story("ja_damaged", "email", True, "refund", _has_refund(_damage_refund), ja_damaged),
    Story("update_my_card", "email", False, "subscription", _has_subscription("incomplete"), update_my_card),
    Story("last_box", "email", False, "subscription", _has_subscription("active", ending=True), last_box),
    Story("cancel_my_subscription", "email", False, "subscription", _has_subscription("active"),
          cancel_my_subscription),
    Story("line_cancel", "line", True, "subscription", _has_subscription("active"), line_cancel),
    Story("card_declined", "email", False, "declined", _declined, card_declined),
    Story("line_declined", "line", True, "declined", _declined, line_declined),
    Story("lost_parcel", "email", False, "refund", lambda s: _big_order(s) is not None, lost_parcel),
    Story("two_charges", "email", False, "orders", _orders(2, clean=True), two_charges),
    Story("line_where", "line", True, "orders", _orders(), line_where),
    Story("line_not_connected", "line", True, "orders", _orders(), line_not_connected),
    Story("where_is_my_order", "email", False, "orders", _orders(), where_is_my_order),
]


def cast(shoppers: list[ShopperFile]) -> list[tuple[Story, ShopperFile]]:
    """Who tells which story: the first shopper (佐藤 美咲, a Japanese subscriber) writes on both
    channels; every other story goes to the first shopper of its language it fits who has not
    written yet. An email story may go to someone who wrote once about another topic (a second
    email is a second ticket); a LINE one may not (their next LINE message would join the
    conversation they have open)."""
    if not shoppers:
        return []
    casting, told = [(BOTH_CHANNELS, shoppers[0])], {}  # customer -> the topics they wrote about
    for story in STORIES:
        fit = [s for s in shoppers[1:] if s.japanese == story.japanese and story.fits(s)]
        s = next((s for s in fit if s.customer not in told), None)
        if s is None and story.channel == "email":
            s = next((s for s in fit if told.get(s.customer) and len(told[s.customer]) == 1
                      and story.topic not in told[s.customer]), None)
        if s is not None:
            casting.append((story, s))
            told.setdefault(s.customer, []).append(story.topic)
    return casting


def seed(base_url: str, channel_secrets: ChannelSecrets, line_api_url: str, stripe_settings: dict | None = None
         ) -> TicketReport:
    """Seed the inbox through the console at `base_url` (which must run with
    `channel_secrets.server_env(line_api_url)`), after the mirror has the shop's customers and
    the demo users exist. Agents' replies from here go to locmem email and `line_api_url`; the
    caller runs Celery tasks eagerly (the demo has no broker), so they are delivered at once."""
    from django.conf import settings
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.test import override_settings

    desk = Desk(base_url, channel_secrets, settings.TICKETS_EMAIL_FROM)
    try:
        # stripe_settings: the key and address of the demo's Stripe stand-in, for an agent's
        # refund checked against Stripe as the panel checks it.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
                               LINE_API_BASE=line_api_url, LINE_CHANNEL_ACCESS_TOKEN=channel_secrets.line_access_token,
                               **(stripe_settings or {})):
            desk.make_teams()
            for story, shopper in cast(load_shoppers()):
                story.play(desk, shopper)
                desk.report.stories.append(f"{story.key}: {shopper.email}")
    except requests.RequestException as exc:
        raise DemoError(f"could not reach the console's channels: {exc.__class__.__name__}") from exc
    except (ValidationError, PermissionDenied) as exc:
        raise DemoError(f"an agent's action was refused: {exc}") from exc
    return desk.report


def inbox_counts() -> dict:
    """What the inbox holds: tickets by channel and status, and replies not delivered."""
    from tickets.models import Message, Ticket

    return {
        "channels": Counter(Ticket.objects.values_list("channel", flat=True)),
        "statuses": Counter(Ticket.objects.values_list("status", flat=True)),
        "undelivered": Message.objects.filter(kind=Message.Kind.OUTBOUND).exclude(
            delivery_status=Message.Delivery.SENT).count(),
    }


# --- macros ----------------------------------------------------------------------------------

# The shop's canned replies: (name, English, Japanese, tags, status after, teams by slug; none:
# every team). Placeholders are filled on the ticket ({{ contact.name }}, {{ agent.name }} ...).
DEMO_MACROS = [
    ("Refund issued",
     "Hi {{ contact.name }},\n\nWe've issued your refund. It usually shows on your statement within 5–10 business "
     "days, depending on your card issuer.\n\nIf you have any other questions, just reply to this message.\n\n"
     "Best regards,\n{{ agent.name }}",
     "{{ contact.name }} 様\n\nいつもご利用いただきありがとうございます。\nご依頼いただいた返金のお手続きが完了いたしました。"
     "ご利用のカード会社により異なりますが、通常5〜10営業日ほどでご利用明細に反映されます。\n\n"
     "ご不明な点がございましたら、お気軽にこちらへご返信ください。\n\n{{ agent.name }}",
     ["refund"], "solved", []),
    ("Where is my order (shipping delay)",
     "Hi {{ contact.name }},\n\nThank you for your patience, and sorry your order is taking longer than expected. "
     "Deliveries are running 1–2 days behind at the moment; the tracking link in your shipping confirmation shows "
     "where your parcel is.\n\nIf it hasn't arrived within 3 business days, reply here and we'll chase the carrier "
     "right away.\n\nBest regards,\n{{ agent.name }}",
     "{{ contact.name }} 様\n\nお問い合わせいただきありがとうございます。\n"
     "商品のお届けが遅れており、ご心配をおかけして申し訳ございません。現在、配送に1〜2日ほどの遅れが生じております。"
     "発送完了メールに記載の追跡番号から、配送状況をご確認いただけます。\n\n"
     "3営業日を過ぎてもお届けがない場合は、こちらへご返信ください。すぐに配送業者へ確認いたします。\n\n{{ agent.name }}",
     ["shipping"], "pending", []),
    ("How to cancel a subscription",
     "Hi {{ contact.name }},\n\nYou can cancel your subscription at any time from your account: sign in, open "
     "“Subscription” and choose “Cancel subscription”. Your deliveries continue until the end of the current "
     "billing period, and you won't be charged again.\n\nIf you'd rather we do it for you, just reply to this "
     "message.\n\nBest regards,\n{{ agent.name }}",
     "{{ contact.name }} 様\n\nお問い合わせいただきありがとうございます。\n"
     "定期便の解約は、マイページからいつでもお手続きいただけます。ログイン後、「定期便の管理」から「解約する」をお選びください。"
     "現在のご請求期間が終わるまではお届けが続き、以降のご請求は発生いたしません。\n\n"
     "こちらでのお手続きをご希望の場合は、このままご返信ください。代わりに解約いたします。\n\n{{ agent.name }}",
     ["subscription", "cancel"], "pending", []),
    ("Double charge explained",
     "Hi {{ contact.name }},\n\nThanks for letting us know. What looks like a second charge is most likely a "
     "temporary authorization from your card issuer: when a payment is retried, the first attempt can show as "
     "“pending” for a few days and then disappears on its own. Only one payment was taken for your order.\n\n"
     "If both are still on your statement after 7 days, reply with a screenshot and we'll refund the extra one.\n\n"
     "Best regards,\n{{ agent.name }}",
     "{{ contact.name }} 様\n\nご連絡いただきありがとうございます。\n"
     "二重にご請求されているように見えるものは、カード会社による一時的な与信(オーソリ)である可能性が高いです。"
     "お支払いが再試行された場合、最初の分が数日間「保留中」として表示され、その後自動的に取り消されます。"
     "ご注文に対するお支払いは1件のみでございます。\n\n"
     "7日を過ぎても2件とも残っている場合は、ご利用明細の画面を添えてご返信ください。重複分を返金いたします。\n\n{{ agent.name }}",
     ["double-charge"], "pending", ["billing", "finance"]),
    ("Ask for the order number",
     "Hi {{ contact.name }},\n\nThanks for getting in touch. So we can look into this, could you send us your order "
     "number? It starts with “KR-” and is in your order confirmation email.\n\nBest regards,\n{{ agent.name }}",
     "{{ contact.name }} 様\n\nお問い合わせいただきありがとうございます。\n"
     "お調べいたしますので、ご注文番号をお知らせいただけますでしょうか。"
     "ご注文番号は「KR-」から始まる番号で、ご注文確認メールに記載されております。\n\n"
     "お手数をおかけいたしますが、どうぞよろしくお願いいたします。\n\n{{ agent.name }}",
     ["needs-info"], "pending", []),
    ("Thanks, closing",
     "Hi {{ contact.name }},\n\nGlad we could help! I'll close this ticket (#{{ ticket.number }}) now; if anything "
     "else comes up, just reply and it will reopen.\n\nHave a lovely day,\n{{ agent.name }}",
     "{{ contact.name }} 様\n\nご返信いただきありがとうございます。解決したとのことで安心いたしました。\n"
     "本件(お問い合わせ番号 #{{ ticket.number }})は、これにて完了とさせていただきます。"
     "またご不明な点がございましたら、いつでもこちらへご返信ください。\n\n今後ともよろしくお願いいたします。\n\n{{ agent.name }}",
     [], "solved", []),
]


def ensure_macros(admin, teams: dict) -> list:
    """The shop's canned replies in English and Japanese, by name; made once (an admin's edits
    in the console stay), through tickets.actions like the macro editor."""
    from tickets import actions
    from tickets.models import Macro

    made = []
    for name, english, japanese, tags, status, team_slugs in DEMO_MACROS:
        if Macro.objects.filter(name=name).exists():
            continue
        made.append(actions.save_macro(
            actor=admin, macro=Macro(name=name, body=english, translations={"ja": japanese}, add_tags=tags,
                                     set_status=status),
            teams=[teams[slug] for slug in team_slugs if slug in teams]))
    return made
