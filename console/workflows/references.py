"""The dynamic references a workflow may use at a point: derived from real Stripe object shapes
(the stripe SDK's typed resource classes, which Stripe generates from its API spec), not from
a hand-kept list, so a field Stripe adds is offered as soon as the SDK has it.

A Stripe trigger puts its event's object in the context under its resource's short name
(`payment_intent`, `early_fraud_warning`, `dispute` ...); a fetch step adds a related object
under its name (the `charge` of a fraud warning, the `customer` of a payment). What a fetch may
bring is read from the same shapes: an expandable field (an id, or the object when expanded).

    refs = available("radar.early_fraud_warning.created", fetched=["charge"])
    "charge.outcome.risk_level" in refs             # True
    refs.kind("charge.amount")                      # "money"
    "customer.metadata.tier" in available("customer.subscription.deleted", ["customer"])  # any metadata key
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from functools import cache

import stripe
from stripe import StripeObject

from .conditions import is_money_field

# The Stripe events a workflow may start from, by the resource their object is.
STRIPE_TRIGGERS: dict[str, str] = {
    "payment_intent.succeeded": "payment_intent",
    "payment_intent.payment_failed": "payment_intent",
    "charge.succeeded": "charge",
    "charge.failed": "charge",
    "charge.refunded": "charge",
    "refund.created": "refund",
    "refund.updated": "refund",
    "charge.dispute.created": "dispute",
    "charge.dispute.updated": "dispute",
    "charge.dispute.closed": "dispute",
    "radar.early_fraud_warning.created": "radar.early_fraud_warning",
    "radar.early_fraud_warning.updated": "radar.early_fraud_warning",
    "invoice.paid": "invoice",
    "invoice.payment_failed": "invoice",
    "customer.subscription.created": "subscription",
    "customer.subscription.updated": "subscription",
    "customer.subscription.deleted": "subscription",
    "customer.created": "customer",
    "customer.updated": "customer",
}
MAX_DEPTH = 4  # charge.payment_method_details.card.checks.cvc_check
TIME_FIELD = re.compile(r"^(created|.*_at|.*_date|.*_start|.*_end|due_by|next_payment_attempt|expires_at)$")
# The resources a workflow reads, by Stripe's object name.
RESOURCES: dict[str, type] = {
    "payment_intent": stripe.PaymentIntent, "charge": stripe.Charge, "refund": stripe.Refund,
    "dispute": stripe.Dispute, "radar.early_fraud_warning": stripe.radar.EarlyFraudWarning,
    "invoice": stripe.Invoice, "subscription": stripe.Subscription, "customer": stripe.Customer,
}


def root_name(resource: str) -> str:
    """radar.early_fraud_warning → early_fraud_warning: the name a context knows it by."""
    return resource.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Reference:
    path: str
    kind: str  # money, number, time, bool, text, id, list, map


def _stripe_class(name: str):
    for space in (stripe, stripe.radar, stripe.billing_portal):
        found = getattr(space, name, None)
        if isinstance(found, type):
            return found
    return None


def _parts(annotation) -> list:
    """The alternatives of an annotation, without None: Optional[X] → [X]; Union[str, "Customer"] → both."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _expandable(parts) -> type | None:
    """The resource an expandable field holds (str or the object): Union[str, "Customer"]."""
    if str not in parts:
        return None
    for part in parts:
        if isinstance(part, typing.ForwardRef):
            return _stripe_class(part.__forward_arg__)
        if isinstance(part, type) and issubclass(part, StripeObject):
            return part
    return None


def _walk(cls, prefix: str, depth: int, out: dict[str, str]) -> None:
    annotations = {k: v for base in reversed(cls.__mro__) for k, v in getattr(base, "__annotations__", {}).items()}
    for key, annotation in annotations.items():
        if key.startswith("_") or key == "object" or typing.get_origin(annotation) is typing.ClassVar:
            continue
        path, parts = f"{prefix}.{key}", _parts(annotation)
        kind_of = parts[0]
        origin = typing.get_origin(kind_of) or kind_of
        if _expandable(parts) is not None or key == "id":
            out[path] = "id"
        elif kind_of is bool:
            out[path] = "bool"
        elif kind_of in (int, float):
            money = is_money_field(key) and "currency" in annotations
            out[path] = "money" if money else "time" if TIME_FIELD.match(key) else "number"
        elif kind_of is str or origin is typing.Literal:
            out[path] = "text"
        elif isinstance(origin, type) and origin.__name__ == "UntypedStripeObject" or origin is dict:
            out[path] = "map"  # any key: metadata.tier, metadata.order_id ...
        elif isinstance(origin, type) and origin.__name__ == "ListObject":
            out[path] = "list"
            item = typing.get_args(kind_of)[0] if typing.get_args(kind_of) else None
            item = _stripe_class(item.__forward_arg__) if isinstance(item, typing.ForwardRef) else item
            if isinstance(item, type) and issubclass(item, StripeObject) and depth + 2 <= MAX_DEPTH:
                _walk(item, f"{path}.data.0", depth + 2, out)  # its first item: lines.data.0.amount
        elif origin in (list, typing.List):
            out[path] = "list"
        elif isinstance(kind_of, type) and issubclass(kind_of, StripeObject):
            if depth < MAX_DEPTH:
                _walk(kind_of, path, depth + 1, out)
        else:
            out[path] = "text"


@cache
def fields(resource: str) -> dict[str, str]:
    """Every reference into one resource's object, with its kind."""
    out: dict[str, str] = {}
    _walk(RESOURCES[resource], root_name(resource), 1, out)
    return out


@cache
def fetchable(resource: str) -> tuple[str, ...]:
    """The related objects a fetch step may bring from an object of `resource` (by field name):
    its expandable fields that hold a resource a workflow reads."""
    cls = RESOURCES[resource]
    names = {c: name for name, c in RESOURCES.items()}
    out = []
    for key, annotation in getattr(cls, "__annotations__", {}).items():
        target = _expandable(_parts(annotation))
        if target in names and root_name(names[target]) == key:
            out.append(key)
    return tuple(sorted(out))


class References:
    """What a condition or a step may refer to at one point of a workflow."""

    def __init__(self, kinds: dict[str, str]):
        self.kinds = kinds
        self._maps = tuple(path + "." for path, kind in kinds.items() if kind == "map")

    def __contains__(self, path: str) -> bool:
        return path in self.kinds or path.startswith(self._maps)

    def __iter__(self):
        return iter(sorted(self.kinds))

    def __len__(self) -> int:
        return len(self.kinds)

    def kind(self, path: str) -> str:
        if path in self.kinds:
            return self.kinds[path]
        return "text" if path.startswith(self._maps) else ""

    def listing(self) -> list[Reference]:
        """For the field picker: every reference with its kind, in path order."""
        return [Reference(path, self.kinds[path]) for path in sorted(self.kinds)]


def _resource_by_root() -> dict[str, str]:
    return {root_name(r): r for r in RESOURCES}


def available(trigger: str, fetched: list[str] | tuple[str, ...] = ()) -> References:
    """The references after `trigger` and the fetch steps so far (by root name). On *.updated
    events the same references also answer "changed from / to" (conditions read the event's
    previous_attributes)."""
    if trigger not in STRIPE_TRIGGERS:
        raise KeyError(trigger)
    roots = _resource_by_root()
    kinds = dict(fields(STRIPE_TRIGGERS[trigger]))
    for name in fetched:
        if name in roots:
            kinds.update(fields(roots[name]))
    return References(kinds)


# --- ticket events ------------------------------------------------------------------------------

# What a ticket event's context holds, read from the models: field names as the models say them
# (the message's text as `message.text`); nothing a workflow should not read (raw HTML, headers).
_RENAMED = {"body_text": "text"}
_HIDDEN = {"body_html", "headers", "uuid", "version", "channel_message_id", "delivery_started_at", "merged_into"}


# What assist understood of the message (console/assist), beside its fields: the intent slug,
# its confidence (0–1), and the Stripe objects it is most likely about.
TRIAGE_KINDS = {"message.intent": "text", "message.confidence": "number", "message.intent_runner_up": "text",
                "message.linked_charge": "id", "message.linked_subscription": "id", "message.linked_invoice": "id",
                "message.linked_refund": "id", "message.customer_refunds": "number", "message.language": "text"}


def _model_kinds(model, root: str) -> dict[str, str]:
    from django.db import models

    out: dict[str, str] = {}
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False) and not field.many_to_many:
            continue  # reverse relations
        name = _RENAMED.get(field.name, field.name)
        if field.name in _HIDDEN or field.auto_created and not field.many_to_many and field.name != "id":
            continue
        path = f"{root}.{name}"
        if field.many_to_many:
            out[path] = "list"
        elif field.is_relation or field.name == "id":
            out[path] = "id"
        elif isinstance(field, models.DateTimeField):
            out[path] = "time"
        elif isinstance(field, models.BooleanField):
            out[path] = "bool"
        elif isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
            out[path] = "number"
        elif isinstance(field, models.JSONField):
            out[path] = "map"
        else:
            out[path] = "text"
    return out


def ticket_references(trigger: str) -> References:
    """ticket.created, ticket.solved: the ticket and its requester (`contact`); message.received
    adds the message."""
    from tickets.models import Contact, Message, Ticket

    kinds = {**_model_kinds(Ticket, "ticket"), **_model_kinds(Contact, "contact")}
    if trigger == "message.received":
        kinds.update(_model_kinds(Message, "message"))
        kinds.update(TRIAGE_KINDS)
    return References(kinds)
