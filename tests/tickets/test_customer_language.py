"""The customer's language: what the intake learns (an email's Content-Language, the LINE
profile, a guess from the first message), what it never overwrites, and the one selector that
says which language Paydesk writes to a customer in (tickets.selectors.customer_language)."""

from __future__ import annotations

import json
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from audit.models import AuditEntry
from tests import factories
from tickets import actions, email_in
from tickets.actions.tickets import macro_body
from tickets.models import Contact, Identity, Macro
from tickets.selectors import customer_language, detect_language, language_code

from .conftest import LINE_SECRET

pytestmark = pytest.mark.django_db


def _email(sender: str, body: str, *, subject: str = "Question", content_language: str = "",
           message_id: str = "") -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "support@paydesk.test"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id or f"<{abs(hash((sender, body, subject)))}@example.test>"
    mail.set_content(body)  # clears Content-* headers: the language goes after
    if content_language:
        mail["Content-Language"] = content_language
    return mail.as_bytes()


def _receive(sender: str, body: str, **kwargs) -> Contact:
    arrival = email_in.receive_bytes(_email(sender, body, **kwargs))
    return Contact.objects.get(pk=arrival.received.message.contact_id)


# --- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("注文した商品がまだ届きません", "ja"),
    ("ありがとう", "ja"),  # hiragana only
    ("ｶｰﾄﾞ", "ja"),  # half-width katakana
    ("返金", "ja"),  # kanji only
    ("My card was charged twice", ""),
    ("Merci beaucoup", ""),  # Latin script says nothing about which language
    ("", ""),
])
def test_detection_is_kana_or_kanji_else_unknown(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize("value, expected", [
    ("ja-JP", "ja"), ("ja_JP", "ja"), ("EN-us", "en"), ("en-US, fr;q=0.5", "en"), ("zh-Hant-TW", "zh"),
    ("", ""), (None, ""), ("*", ""), ("x", ""), ("english", ""),
])
def test_language_codes_keep_the_primary_subtag(value, expected):
    assert language_code(value) == expected


# --- the intake -------------------------------------------------------------------------------


def test_a_first_message_in_japanese_makes_the_contact_japanese():
    contact = _receive("hana@example.jp", "先週の請求について質問があります。")
    assert contact.language == "ja"
    entry = AuditEntry.objects.get(action="contact.update")
    assert entry.details["language"] == {"from": "", "to": "ja"} and entry.details["source"] == "detected"


def test_a_first_message_in_english_leaves_the_language_unknown():
    contact = _receive("sam@example.com", "Hello, I was charged twice.")
    assert contact.language == ""
    assert not AuditEntry.objects.filter(action="contact.update").exists()


def test_content_language_says_it_even_over_the_text():
    contact = _receive("ken@example.jp", "請求書の件です", content_language="en-US")
    assert contact.language == "en"
    assert AuditEntry.objects.get(action="contact.update").details["source"] == "email"


def test_content_language_on_the_text_part_counts_too():
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "ann@example.com", "support@paydesk.test", "Hi"
    mail["Message-ID"] = "<part-lang@example.com>"
    mail.set_content("Hello")
    mail.add_alternative("<p>Hello</p>", subtype="html")
    mail.get_payload()[0]["Content-Language"] = "en"
    assert email_in.read(mail.as_bytes()).language == "en"


def test_a_guess_never_replaces_a_known_language():
    contact = factories.ContactFactory(language="en")
    factories.IdentityFactory(contact=contact, kind="email", value="lee@example.com")
    _receive("lee@example.com", "こんにちは、解約したいです。")
    contact.refresh_from_db()
    assert contact.language == "en"
    assert not AuditEntry.objects.filter(action="contact.update").exists()


def test_what_the_customer_says_replaces_a_guess():
    contact = _receive("mei@example.com", "日本語で失礼します", message_id="<one@example.com>")
    assert contact.language == "ja"
    _receive("mei@example.com", "Following up", content_language="en", message_id="<two@example.com>")
    contact.refresh_from_db()
    assert contact.language == "en"


def test_set_contact_language():
    contact = factories.ContactFactory()
    actions.set_contact_language(contact=contact, language="ja-JP", source="stripe")
    contact.refresh_from_db()
    assert contact.language == "ja"
    # A guess does not replace it; the customer's own word does.
    actions.set_contact_language(contact=contact, language="en", source="detected")
    contact.refresh_from_db()
    assert contact.language == "ja"
    actions.set_contact_language(contact=contact, language="en_GB", source="line")
    contact.refresh_from_db()
    assert contact.language == "en"
    # Nothing said, nothing changed.
    actions.set_contact_language(contact=contact, language="", source="email")
    contact.refresh_from_db()
    assert contact.language == "en"
    assert AuditEntry.objects.filter(action="contact.update").count() == 2


def test_an_agent_sets_or_clears_it_and_paydesk_may_not_pretend_to_be_one(agent):
    contact = factories.ContactFactory(language="ja")
    with pytest.raises(PermissionDenied):
        actions.set_contact_language(contact=contact, language="en", source="agent")
    with pytest.raises(ValidationError, match="not a language code"):
        actions.set_contact_language(actor=agent, contact=contact, language="Japanese!", source="agent")
    with pytest.raises(ValidationError, match="Unknown language source"):
        actions.set_contact_language(actor=agent, contact=contact, language="en", source="guess")
    actions.set_contact_language(actor=agent, contact=contact, language="", source="agent")
    contact.refresh_from_db()
    assert contact.language == ""
    assert AuditEntry.objects.get(action="contact.update").actor == agent


def test_a_merge_keeps_a_language_and_its_undo_gives_it_back(agent, admin_user):
    survivor = factories.ContactFactory(name="Mika")
    merged = factories.ContactFactory(name="", language="ja")
    merge = actions.contact_merge(actor=admin_user, survivor=survivor, merged=merged)
    survivor.refresh_from_db()
    assert survivor.language == "ja"
    actions.undo_merge(actor=admin_user, merge=merge)
    survivor.refresh_from_db()
    assert survivor.language == ""


# --- LINE: the profile's language ---------------------------------------------------------


class _LineProfiles:
    """LINE's GET /v2/bot/profile/{userId}, answering the language it is given per user."""

    def __init__(self):
        self.languages: dict[str, str | None] = {}
        self.asked: list[str] = []
        profiles = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                user_id = self.path.rsplit("/", 1)[-1]
                profiles.asked.append(user_id)
                body = {"displayName": "LINE user", "userId": user_id}
                if profiles.languages.get(user_id):
                    body["language"] = profiles.languages[user_id]
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def line_profiles(settings):
    profiles = _LineProfiles()
    settings.LINE_API_BASE = profiles.url
    yield profiles
    profiles.close()


@pytest.fixture
def post_line(client, committed):
    def post(*events):
        body = factories.line_payload(*events)
        with committed():
            return client.post("/line/webhook/", body, content_type="application/json",
                               HTTP_X_LINE_SIGNATURE=factories.line_signature(body, LINE_SECRET))

    return post


def test_the_line_profile_language_beats_the_guess(post_line, line_profiles):
    user = factories.line_user_id()
    line_profiles.languages[user] = "en"
    assert post_line(factories.line_event(user_id=user, text="こんにちは")).status_code == 200
    contact = Identity.objects.get(kind="line", value=user).contact
    assert contact.language == "en"
    assert line_profiles.asked == [user]
    sources = [e.details["source"] for e in AuditEntry.objects.filter(action="contact.update").order_by("id")]
    assert sources == ["detected", "line"]
    # The same conversation goes on: LINE is not asked again.
    post_line(factories.line_event(user_id=user, text="まだですか"))
    assert line_profiles.asked == [user]


def test_without_a_profile_language_the_guess_stays(post_line, line_profiles):
    user = factories.line_user_id()
    post_line(factories.line_event(user_id=user, text="返金してください"))
    assert line_profiles.asked == [user]
    assert Identity.objects.get(kind="line", value=user).contact.language == "ja"


def test_a_follow_asks_the_profile(post_line, line_profiles):
    user = factories.line_user_id()
    line_profiles.languages[user] = "ja-JP"
    post_line(factories.line_event("follow", user_id=user))
    assert Identity.objects.get(kind="line", value=user).contact.language == "ja"


def test_line_unreachable_changes_nothing(post_line, settings):
    settings.LINE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    user = factories.line_user_id()
    assert post_line(factories.line_event(user_id=user, text="Hello")).status_code == 200
    assert Identity.objects.get(kind="line", value=user).contact.language == ""


# --- the selector ---------------------------------------------------------------------------


def test_the_contacts_language_comes_first():
    contact = factories.ContactFactory(language="en")
    ticket = factories.TicketFactory(requester=contact, channel="line")
    factories.MessageFactory(ticket=ticket, body_text="日本語のメッセージ")
    assert customer_language(contact, ticket) == "en"
    assert customer_language(None, ticket) == "en"


def test_then_the_latest_message_on_the_ticket():
    contact = factories.ContactFactory()
    ticket = factories.TicketFactory(requester=contact, channel="email")
    factories.MessageFactory(ticket=ticket, body_text="Hello")
    factories.MessageFactory(ticket=ticket, body_text="すみません、まだ届きません")
    assert customer_language(contact, ticket) == "ja"
    factories.MessageFactory(ticket=ticket, body_text="Any news?")
    assert customer_language(contact, ticket) == "en"
    # Without a ticket, their latest message anywhere.
    other = factories.TicketFactory(requester=contact)
    factories.MessageFactory(ticket=other, body_text="お願いします")
    assert customer_language(contact) == "ja"


def test_then_the_channel_then_the_default(settings):
    contact = factories.ContactFactory()
    line_ticket = factories.TicketFactory(requester=contact, channel="line")
    factories.MessageFactory(ticket=line_ticket, body_text="[sticker]")
    assert customer_language(contact, line_ticket) == "ja"
    email_ticket = factories.TicketFactory(requester=contact, channel="email")
    assert customer_language(contact, email_ticket) == "en"
    settings.LANGUAGE_CODE = "ja"
    assert customer_language(contact, email_ticket) == "ja"
    assert customer_language(None) == "ja"


def test_a_language_paydesk_has_no_translation_for_gets_the_default():
    contact = factories.ContactFactory(language="fr")
    ticket = factories.TicketFactory(requester=contact, channel="line")
    assert customer_language(contact, ticket) == "en"


def test_the_agents_language_plays_no_part():
    contact = factories.ContactFactory()
    ticket = factories.TicketFactory(requester=contact, channel="email")
    factories.MessageFactory(ticket=ticket, body_text="Thanks")
    with translation.override("ja"):
        assert customer_language(contact, ticket) == "en"


# --- macros ---------------------------------------------------------------------------------


def test_a_macro_body_per_language_and_its_fallback():
    macro = Macro(name="Thanks", body="Thanks!", translations={"ja": "ありがとうございます。", "en": ""})
    assert macro_body(macro, "ja") == "ありがとうございます。"
    assert macro_body(macro, "en") == "Thanks!"  # an empty translation is no translation
    assert macro_body(macro, "fr") == "Thanks!"


def test_saving_a_macro_keeps_language_codes(admin_user):
    macro = actions.save_macro(actor=admin_user, macro=Macro(
        name="Refund done", body="Refunded.", translations={"ja-JP": "返金しました。", "en": "  "}))
    macro.refresh_from_db()
    assert macro.translations == {"ja": "返金しました。"}
    with pytest.raises(ValidationError, match="not a language code"):
        actions.save_macro(actor=admin_user, macro=Macro(name="Bad", translations={"日本語": "x"}))
    with pytest.raises(ValidationError, match="must be text"):
        actions.save_macro(actor=admin_user, macro=Macro(name="Bad", translations={"ja": 3}))
