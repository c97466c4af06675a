"""The top-bar search: one box for tickets, messages, contacts, payments and Stripe customers.

`jump` says where a query goes straight to (an exact Stripe id, "#1042", an exact LINE id);
`results` finds everything else, grouped by kind, newest first, each group limited to what the
person's permissions allow. PostgreSQL does the matching: `icontains` (ILIKE '%…%') is served by
the pg_trgm GIN indexes of tickets/0006 and payments/0008 for three characters or more. Shorter
text is searched only when it holds a non-ASCII character (two-letter Japanese words such as
"二重"), which no trigram serves. On PostgreSQL messages, ticket subjects and contact names then
go by the short-gram GIN indexes of tickets/0009 (`short_ids`): first the newest rows alone (a
common word is found there at once), else every match through the index, newest first; both
exact. Payments' descriptions and metadata and Stripe customers' names go by those of
payments/0009 (common.short_grams is the function behind both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

import phonenumbers
from django.db import connection
from django.db.models import Q
from django.db.models.fields.json import KT
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from common import short_grams

from payments.mirror import KINDS
from payments.models import WebhookEvent
from payments.money import ZERO_DECIMAL
from payments.selectors import looks_like_id
from payments.views import LISTS, list_for_id, view_perm

GROUP_LIMIT = 20
# A charge's metadata as text: what KT("data__metadata") compiles to, and payments 0009 indexes.
METADATA_SQL = "(\"data\" ->> 'metadata')"
SHORT_PROBE = 1000  # newest rows read first for a one- or two-character word
SNIPPET = 70  # characters of context either side of a match in a message
_CUSTOMER_OF = {"ch_": "charge", "py_": "charge", "pi_": "payment_intent", "in_": "invoice", "sub_": "subscription"}

# What each group needs; the order is the page's.
GROUPS = (
    ("tickets", gettext_lazy("Tickets"), ("tickets.view_ticket",)),
    ("messages", gettext_lazy("Messages"), ("tickets.view_message", "tickets.view_ticket")),
    ("contacts", gettext_lazy("Contacts"), ("tickets.view_contact",)),
    ("payments", gettext_lazy("Payments"), ("payments.view_charge",)),
    ("customers", gettext_lazy("Stripe customers"), ("payments.view_customer",)),
)


def can_search(user) -> bool:
    return any(user.has_perms(perms) for _key, _label, perms in GROUPS)


# --- reading the query ---------------------------------------------------------------------------


@dataclass
class Query:
    raw: str
    number: int | None = None  # a ticket number: "#4" or "4"
    hash_number: bool = False  # written "#4": always the ticket
    text: str = ""  # searched as words, "" when too short to search sensibly
    phones: list[str] = field(default_factory=list)  # stored forms a phone identity may have
    phone_tail: str = ""  # the national significant number, for values stored another way
    last4: str = ""
    amounts: list[tuple[int, bool]] = field(default_factory=list)  # (minor units, zero-decimal currency)


def _ascii_int(raw: str, digits: int) -> int | None:
    # str.isdigit() accepts "²" and "１", which are no ticket number.
    if raw.isascii() and raw.isdigit() and len(raw) <= digits:
        number = int(raw)
        return number if number >= 1 else None
    return None


def phone_forms(q: str) -> tuple[list[str], str]:
    """The forms a phone number may be stored in, E.164 first: '+81 90-8628-8424' and
    '09086288424' both give ['+819086288424', '09086288424', …]. A number written with a
    leading 0 is read as Japanese (the shop's region); anything else as written."""
    value = q.strip()
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15 or re.search(r"[^\d\s\-+().]", value):
        return [], ""
    region = "JP" if value.startswith("0") else None
    if region is None and not value.startswith("+"):
        value = "+" + digits  # 819086288424: an international number without its plus
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return [], ""
    if not phonenumbers.is_possible_number(number):
        return [], ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    national = re.sub(r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    forms = list(dict.fromkeys([e164, national, digits, e164.lstrip("+")]))
    return forms, str(number.national_number)


def _amounts(q: str) -> list[tuple[int, bool]]:
    """'2500', '¥2,500', '39.00' as amounts: whole units in zero-decimal currencies, else cents."""
    value = re.sub(r"[\s,¥$€£]", "", q)
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", value):
        return []
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return []
    out = [(int(amount * 100), False)]
    if amount == amount.to_integral_value():
        out.append((int(amount), True))
    return out


def read(q: str) -> Query:
    q = q.strip()
    query = Query(raw=q)
    if q.startswith("#"):
        query.number = _ascii_int(q[1:], 18)
        query.hash_number = query.number is not None
    elif not q.startswith("0"):  # "0007" is a card's last four or part of a number, not ticket 7
        query.number = _ascii_int(q, 7)
    if not query.hash_number:
        # Trigrams need three characters; shorter ASCII would match nearly everything.
        if len(q) >= 3 or not q.isascii():
            query.text = q
        query.phones, query.phone_tail = phone_forms(q)
        if q.isascii() and q.isdigit() and len(q) == 4:
            query.last4 = q
        query.amounts = _amounts(q)
    return query


def is_short(text: str) -> bool:
    """A one- or two-character word (never ASCII, see `read`) on PostgreSQL: no trigram serves it."""
    return 0 < len(text) < 3 and connection.vendor == "postgresql"


def short_ids(model, column: str, text: str, *, probe: bool = True, expression: str = "") -> list:
    """The ids of the newest GROUP_LIMIT rows of `model` whose `column` (or SQL `expression`)
    contains `text` (one or two characters, not all ASCII), newest first, for a table with a
    short-gram index on it (tickets 0009, payments 0009). With `probe` (a table indexed by
    `created`), a common word is found among the newest SHORT_PROBE rows (the LIKE on those
    alone); otherwise the GIN index finds every match, sorted by time. The planner is not left to
    choose: its estimate for a word of two characters is a guess, and a wrong guess reads the
    table backwards row by row."""
    table = connection.ops.quote_name(model._meta.db_table)
    col = expression or connection.ops.quote_name(column)
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with connection.cursor() as cursor:
        if probe:
            cursor.execute(f"SELECT id FROM (SELECT id, created, {col} AS v FROM {table} ORDER BY created DESC, "
                           f"id DESC LIMIT %s) AS newest WHERE UPPER(v::text) LIKE UPPER(%s) "
                           f"ORDER BY created DESC, id DESC LIMIT %s", [SHORT_PROBE, pattern, GROUP_LIMIT])
            ids = [row[0] for row in cursor.fetchall()]
            if len(ids) >= GROUP_LIMIT:
                return ids
        cursor.execute(f"WITH hits AS MATERIALIZED (SELECT id, created FROM {table} "
                       f"WHERE {short_grams.FUNCTION}({col}) @> ARRAY[UPPER(%s)]) "
                       f"SELECT id FROM hits ORDER BY created DESC NULLS LAST, id DESC LIMIT %s", [text, GROUP_LIMIT])
        return [row[0] for row in cursor.fetchall()]


# --- highlighting --------------------------------------------------------------------------------


def highlight(text: str, needle: str, *, whole: bool = False) -> SafeString:
    """`text` escaped, with each case-insensitive occurrence of `needle` in <mark>. Each piece is
    escaped on its own, so neither the text nor the query can inject markup or split an entity."""
    text = text or ""
    if whole:
        return mark_safe(f"<mark>{escape(text)}</mark>") if text else mark_safe("")
    if not needle:
        return escape(text)
    parts = re.split(f"({re.escape(needle)})", text, flags=re.IGNORECASE)
    return mark_safe("".join(f"<mark>{escape(p)}</mark>" if i % 2 else escape(p) for i, p in enumerate(parts)))


def snippet(text: str, needle: str) -> str:
    """The part of a long message around its first match, on one line."""
    text = " ".join((text or "").split())
    at = text.lower().find(needle.lower()) if needle else -1
    if at < 0 or len(text) <= 2 * SNIPPET + len(needle):
        return text[: 2 * SNIPPET + len(needle)] + ("…" if len(text) > 2 * SNIPPET + len(needle) else "")
    start, end = max(0, at - SNIPPET), min(len(text), at + len(needle) + SNIPPET)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


# --- where a query goes straight to --------------------------------------------------------------


def search_target(user, q: str) -> str:
    """Where a Stripe id goes: its object, or the matching list filtered by it when the mirror
    does not hold it (which says "nothing here" instead of a bare 404)."""
    q = q.strip()
    customers = reverse("mirror_list", args=["customers"])
    if not q:
        return customers
    if looks_like_id(q):
        if q.startswith("evt_") and user.has_perm("payments.view_webhookevent"):
            found = WebhookEvent.objects.filter(pk=q).exists()
            return reverse("event_detail", args=[q]) if found else f"{reverse('event_log')}?{urlencode({'q': q})}"
        slug = list_for_id(q)
        if slug:
            spec = LISTS[slug]
            if user.has_perm(view_perm(spec.kind)):
                if KINDS[spec.kind].model.objects.filter(pk=q).exists():
                    return reverse("mirror_object", args=[slug, q])
                return f"{reverse('mirror_list', args=[slug])}?{urlencode({'q': q})}"
    return f"{customers}?{urlencode({'q': q})}"


def _stripe_contact(q: str) -> int | None:
    """The contact behind a Stripe id, through the object's customer in the mirror."""
    from tickets.models import Identity

    from .timeline import Resolver

    customer = ""
    if q.startswith("cus_"):
        customer = q
    elif q.startswith(("dp_", "du_", "re_", "pyr_", "issfr_")):
        model = KINDS["dispute" if q.startswith(("dp_", "du_")) else "refund" if q.startswith(("re_", "pyr_"))
                      else "radar.early_fraud_warning"].model
        customer = Resolver().charge_customer(model.objects.filter(pk=q).values_list("charge", flat=True).first() or "")
    else:
        for prefix, kind in _CUSTOMER_OF.items():
            if q.startswith(prefix):
                customer = KINDS[kind].model.objects.filter(pk=q).values_list("customer", flat=True).first() or ""
    if not customer:
        return None
    return Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer).values_list(
        "contact_id", flat=True).first()


def _customer_page(contact_id: int) -> str:
    from tickets.models import Contact

    # A merged contact's page is its survivor's.
    survivor = Contact.objects.filter(pk=contact_id).values_list("merged_into_id", flat=True).first()
    return reverse("customer", args=[survivor or contact_id])


def jump(user, q: str) -> str | None:
    """The one page a query names, or None to list results. A Stripe id goes to its customer's
    page when a contact has that customer, else to the object; "#4" to ticket 4 (or to the
    results, which say it does not exist); an exact LINE user id to its contact."""
    from tickets.identity import LINE_USER_ID
    from tickets.models import Identity, Ticket

    q = q.strip()
    if not q:
        return search_target(user, q)
    if looks_like_id(q):
        contact_id = _stripe_contact(q) if user.has_perm("tickets.view_contact") else None
        return _customer_page(contact_id) if contact_id else search_target(user, q)
    query = read(q)
    if query.hash_number and user.has_perm("tickets.view_ticket"):
        if Ticket.objects.filter(number=query.number).exists():
            return reverse("ticket", args=[query.number])
    if LINE_USER_ID.match(q) and user.has_perm("tickets.view_contact"):
        contact_id = Identity.objects.filter(kind="line", value=q).values_list("contact_id", flat=True).first()
        if contact_id:
            return _customer_page(contact_id)
    return None


# --- the groups ----------------------------------------------------------------------------------


def _tickets(query: Query) -> list[dict]:
    from tickets.models import Contact, Ticket

    match = Q(pk__in=[])
    if query.number is not None:
        match |= Q(number=query.number)
    if query.text:
        match |= Q(pk__in=short_ids(Ticket, "subject", query.text, probe=False)) if is_short(query.text) else \
            Q(subject__icontains=query.text)
    if query.number is None and not query.text:
        return []
    rows = list(Ticket.objects.filter(match).order_by("-created", "-id")
                .values("number", "subject", "status", "created", "requester_id")[:GROUP_LIMIT])
    # Names looked up for the page's rows only: a join would hash every contact first.
    names = dict(Contact.objects.filter(pk__in={r["requester_id"] for r in rows}).values_list("pk", "name"))
    # The ticket the number names comes first, whatever its age.
    rows.sort(key=lambda r: r["number"] != query.number)
    for r in rows:
        r["requester__name"] = names.get(r["requester_id"], "")
        r["url"] = reverse("ticket", args=[r["number"]])
        r["number_html"] = highlight(f"#{r['number']}", "", whole=r["number"] == query.number)
        r["subject_html"] = highlight(r["subject"], query.text)
    return rows


def _messages(query: Query) -> list[dict]:
    from tickets.models import Message

    if not query.text:
        return []
    match = Q(pk__in=short_ids(Message, "body_text", query.text)) if is_short(query.text) else \
        Q(body_text__icontains=query.text)
    rows = list(Message.objects.filter(match).order_by("-created", "-id")
                .values("pk", "body_text", "kind", "created", "ticket__number", "ticket__subject",
                        "contact__name")[:GROUP_LIMIT])
    for r in rows:
        r["url"] = reverse("ticket", args=[r["ticket__number"]]) + f"#message-{r['pk']}"
        r["snippet_html"] = highlight(snippet(r.pop("body_text"), query.text), query.text)
    return rows


def _contacts(query: Query) -> list[dict]:
    from tickets.models import Contact, Identity

    by_identity = Q(pk__in=[])
    if query.text and query.text.isascii():  # emails, LINE ids and phones are ASCII
        by_identity |= Q(value__icontains=query.text)
    if query.phones:
        by_identity |= Q(kind=Identity.Kind.PHONE, value__in=query.phones)
        by_identity |= Q(kind=Identity.Kind.PHONE, value__iendswith=query.phone_tail)
    if not query.text and not query.phones:
        return []
    matched: dict[int, list[tuple[str, str]]] = {}
    for cid, kind, value in Identity.objects.filter(by_identity).order_by("-created", "-id").values_list(
            "contact_id", "kind", "value")[:GROUP_LIMIT]:
        matched.setdefault(cid, []).append((kind, value))
    match = Q(pk__in=list(matched))
    if query.text:
        match |= Q(pk__in=short_ids(Contact, "name", query.text, probe=False)) if is_short(query.text) else \
            Q(name__icontains=query.text)
    rows = list(Contact.objects.filter(match).order_by("-created", "-id")
                .values("pk", "name", "created", "merged_into_id")[:GROUP_LIMIT])
    for r in rows:
        r["url"] = _customer_page(r["pk"]) if r["merged_into_id"] else reverse("customer", args=[r["pk"]])
        r["name_html"] = highlight(r["name"], query.text)
        r["identities"] = [
            {"kind": kind, "value_html": highlight(value, "", whole=True) if kind == Identity.Kind.PHONE
             and query.phones else highlight(value, query.text)}
            for kind, value in matched.get(r["pk"], [])
        ]
    return rows


def _payments(query: Query) -> list[dict]:
    from payments.models import Charge

    match = Q(pk__in=[])
    if query.text:
        # Order ids kept in metadata ({"order_id": "KR-10454"}): the JSON text, trigram-indexed.
        in_text = Q(description__icontains=query.text) | Q(metadata_text__icontains=query.text)
        if is_short(query.text):  # one or two characters: the short-gram indexes (payments 0009)
            in_text = Q(pk__in=short_ids(Charge, "description", query.text, probe=False)) | Q(
                pk__in=short_ids(Charge, "", query.text, probe=False, expression=METADATA_SQL))
        match |= in_text
    if query.last4:
        # PostgreSQL: the text expression charge_last4 indexes. SQLite (the demo) compares a
        # KT annotation as JSON, so there the JSON lookup is the one that matches.
        match |= Q(last4=query.last4) if connection.vendor == "postgresql" else \
            Q(data__payment_method_details__card__last4=query.last4)
    for amount, zero_decimal in query.amounts:
        match |= Q(amount=amount, currency__in=ZERO_DECIMAL) if zero_decimal else \
            Q(amount=amount) & ~Q(currency__in=ZERO_DECIMAL)
    if not (query.text or query.last4 or query.amounts):
        return []
    rows = list(Charge.objects.annotate(metadata_text=KT("data__metadata"),
                                        last4=KT("data__payment_method_details__card__last4"))
                .filter(match).order_by("-created", "-id")
                .values("id", "description", "amount", "currency", "status", "created", "customer", "last4",
                        "metadata_text")[:GROUP_LIMIT])
    for r in rows:
        r["url"] = reverse("mirror_object", args=["payments", r["id"]])
        r["description_html"] = highlight(r["description"], query.text)
        found_in_metadata = query.text and query.text.lower() in (r["metadata_text"] or "").lower()
        r["metadata_html"] = highlight(r["metadata_text"], query.text) if found_in_metadata else ""
        r["last4_html"] = highlight(r["last4"] or "", "", whole=bool(query.last4 and r["last4"] == query.last4)) \
            if r["last4"] else ""
    return rows


def _customers(query: Query) -> list[dict]:
    from payments.models import Customer

    if not query.text:
        return []
    match = Q(name__icontains=query.text)
    if query.text.isascii():  # an email address is ASCII (IDNA)
        match |= Q(email__icontains=query.text)
    if is_short(query.text):  # one or two characters (never an email): the short-gram index (payments 0009)
        match = Q(pk__in=short_ids(Customer, "name", query.text, probe=False))
    rows = list(Customer.objects.filter(match)
                .order_by("-created", "-id").values("id", "name", "email", "created")[:GROUP_LIMIT])
    for r in rows:
        r["url"] = reverse("mirror_object", args=["customers", r["id"]])
        r["name_html"] = highlight(r["name"], query.text)
        r["email_html"] = highlight(r["email"], query.text)
    return rows


FINDERS = {"tickets": _tickets, "messages": _messages, "contacts": _contacts, "payments": _payments,
           "customers": _customers}


def results(user, q: str) -> dict:
    """What a query finds, grouped: {"groups": [{key, label, rows, more}], "searched": [labels],
    "total", "only_ticket"}. A group the person may not see is neither searched nor named."""
    query = read(q)
    groups, searched = [], []
    for key, label, perms in GROUPS:
        if not user.has_perms(perms):
            continue
        searched.append(label)
        rows = FINDERS[key](query)
        if rows:
            groups.append({"key": key, "label": label, "rows": rows, "more": len(rows) >= GROUP_LIMIT})
    total = sum(len(g["rows"]) for g in groups)
    # "4" goes straight to ticket 4 when that is all it finds; otherwise it is listed first.
    only_ticket = None
    if query.number is not None and len(groups) == 1 and groups[0]["key"] == "tickets":
        named = [r for r in groups[0]["rows"] if r["number"] == query.number]
        if named and len(groups[0]["rows"]) == 1:
            only_ticket = named[0]["url"]
    return {"q": query.raw, "groups": groups, "searched": searched, "total": total, "only_ticket": only_ticket}
