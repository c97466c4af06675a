"""Form → preview → confirm, once for every action a person confirms in money terms (refund,
cancel, metadata, portal link; dispute evidence next), on Django forms.

1. GET form: the action's Django form, with a fresh token (the confirmation's idempotency key).
2. POST preview: the form validates what the person typed (a field error comes back in the form,
   400); `plan()` asks the action what exactly would happen, and the preview says it in money
   terms. The preview carries one hidden field, the confirmation: the exact parameters of what
   was shown (with the flow, the person, the object, the ticket, the token and the time),
   signed with Django's signing.
3. POST confirm: only the signed confirmation is read. A missing, altered or expired one, another
   person's, or one made for another object or flow is refused (400) and nothing happens; the
   action runs with exactly what was previewed, its token the idempotency key, so a double click
   or a retry does it once.

A flow is a subclass naming its form, template and permission and answering `target`,
`plan` and `execute`; `urls()` gives its three views.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib.auth.decorators import permission_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from payments.errors import ActionError, ActionInProgress, PartiallyCompleted, StripeActionFailed
from tickets.models import Ticket

REFRESH_EVENT = "paydesk:panel-refresh"
MAX_AGE = 15 * 60  # a preview older than this is reviewed again (Stripe may have moved since)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# What an action that did not happen answers with: the person's message and an HTTP status.
_STATUS = ((ActionInProgress, 409), (StripeActionFailed, 502), (ActionError, 400))


def failure(exc: Exception) -> tuple[int, str]:
    """(HTTP status, message for the person) for an action that did not happen."""
    if isinstance(exc, PermissionDenied):
        return 403, str(exc) or _("Your role can't do this.")
    if isinstance(exc, ValidationError):
        return 400, " ".join(exc.messages)
    return next(code for cls, code in _STATUS if isinstance(exc, cls)), exc.message


REFUSALS = (ActionError, PermissionDenied, ValidationError)


@dataclass
class Outcome:
    """What a confirmed action did, for the result fragment."""

    message: str = ""
    error: str = ""
    url: str = ""  # a link to copy (a portal link without a ticket)
    refresh: bool = True  # the panel reloads its figures
    extra: dict = field(default_factory=dict)


def ticket_beside(contact_id: int, raw: Any) -> Ticket | None:
    """The ticket the panel sits beside (?ticket=<id>), if it is this contact's; a stale,
    foreign or malformed id is a 404."""
    raw = str(raw or "").strip()
    if not raw:
        return None
    ticket = None
    if raw.isascii() and raw.isdigit() and len(raw) < 19:
        ticket = Ticket.objects.filter(pk=int(raw), requester_id=contact_id).first()
    if ticket is None:
        raise Http404(_("No such ticket for this customer"))
    return ticket


def form_token(raw: Any) -> str:
    """The form's token (the action's idempotency key), or a new one if it is missing or malformed."""
    raw = str(raw or "")
    return raw if _TOKEN.match(raw) else uuid.uuid4().hex


class ConfirmFlow:
    """One action confirmed in three steps. Subclasses set the class attributes and implement
    `target`, `plan` and `execute`; `context` adds to what the template sees."""

    name: str  # the flow's name: URL names, the signing salt
    template: str  # with partials #form, #preview and #result
    form_class: type[forms.Form]
    permission: str | tuple[str, ...]

    # --- what a flow answers ----------------------------------------------------------------

    def target(self, request: HttpRequest, contact_id: int | None = None, **kwargs) -> Any:
        """The object the URL names, checked to be this contact's (else Http404)."""
        raise NotImplementedError

    def form_kwargs(self, request: HttpRequest, target: Any) -> dict:
        return {}

    def initial(self, request: HttpRequest, target: Any) -> dict:
        """What the form starts with (besides a fresh token)."""
        return {}

    def context(self, request: HttpRequest, target: Any) -> dict:
        return {}

    # Fields a link may fill in (a suggestion beside a draft: ?reason=duplicate). Only a start:
    # the form validates them on the preview like anything typed.
    prefill: tuple[str, ...] = ()

    def prefilled(self, request: HttpRequest) -> dict:
        return {name: request.GET[name][:500] for name in self.prefill if isinstance(request.GET.get(name), str)}

    def plan(self, request: HttpRequest, target: Any, data: dict, ticket: Ticket | None) -> tuple[str, dict]:
        """(description in money terms, the JSON-safe parameters `execute` will get), or raise a refusal."""
        raise NotImplementedError

    def execute(self, request: HttpRequest, target: Any, params: dict, ticket: Ticket | None, token: str) -> Outcome:
        raise NotImplementedError

    def refused(self, request: HttpRequest, target: Any, data: dict, ticket: Ticket | None, exc: Exception,
                context: dict) -> None:
        """A preview refused: a flow may offer a next step (the refund's "Ask finance")."""

    def target_id(self, target: Any) -> str:
        return str(getattr(target, "pk", target))

    # --- the three steps ---------------------------------------------------------------------

    def _base(self, request: HttpRequest, contact_id: int | None, target: Any, ticket: Ticket | None, form) -> dict:
        return {
            "contact_id": contact_id, "target": target, "form": form, "ticket": ticket,
            "ticket_id": ticket.pk if ticket else "", "ticket_ref": f"#{ticket.number}" if ticket else "",
            **self.context(request, target),
        }

    def _ticket(self, request: HttpRequest, contact_id: int | None) -> Ticket | None:
        if contact_id is None:  # a flow of its own page (a dispute's), not of a customer's panel
            return None
        data = request.POST if request.method == "POST" else request.GET
        return ticket_beside(contact_id, data.get("ticket", request.GET.get("ticket", "")))

    def form_view(self, request: HttpRequest, contact_id: int | None = None, **kwargs) -> HttpResponse:
        target = self.target(request, contact_id, **kwargs)
        ticket = self._ticket(request, contact_id)
        initial = {**self.initial(request, target), **self.prefilled(request), "token": uuid.uuid4().hex}
        form = self.form_class(initial=initial, **self.form_kwargs(request, target))
        return render(request, self.template + "#form", self._base(request, contact_id, target, ticket, form))

    def preview_view(self, request: HttpRequest, contact_id: int | None = None, **kwargs) -> HttpResponse:
        target = self.target(request, contact_id, **kwargs)
        ticket = self._ticket(request, contact_id)
        form = self.form_class(request.POST, **self.form_kwargs(request, target))
        context = self._base(request, contact_id, target, ticket, form)
        if not form.is_valid():
            # A message that does not say which field ("This field is required.") gets the field's label.
            context["error"] = " ".join(
                _("%(field)s: %(error)s") % {"field": form.fields[name].label or name.capitalize(), "error": message}
                if error.code == "required" else message
                for name, errors in form.errors.as_data().items() for error in errors for message in error)
            return render(request, self.template + "#form", context, status=400)
        data = form.cleaned_data
        try:
            description, params = self.plan(request, target, data, ticket)
        except REFUSALS as exc:
            status, context["error"] = failure(exc)
            self.refused(request, target, data, ticket, exc, context)
            return render(request, self.template + "#form", context, status=status)
        context.update(description=description, params=params, confirmation=self.seal(
            request, target, ticket, params, form_token(data.get("token"))))
        return render(request, self.template + "#preview", context)

    def confirm_view(self, request: HttpRequest, contact_id: int | None = None, **kwargs) -> HttpResponse:
        target = self.target(request, contact_id, **kwargs)
        context = self._base(request, contact_id, target, None, None)
        try:
            sealed = self.unseal(request, target, request.POST.get("confirmation", ""))
            ticket = ticket_beside(contact_id, sealed["ticket"]) if contact_id is not None else None
            context.update(self._base(request, contact_id, target, ticket, None))
            outcome = self.execute(request, target, sealed["params"], ticket, sealed["token"])
        except PartiallyCompleted as exc:
            # The first step happened (mirrored, audited): say what failed, and refresh the panel.
            outcome = Outcome(error=exc.message)
        except REFUSALS as exc:
            status, context["error"] = failure(exc)
            return render(request, self.template + "#result", context, status=status)
        context.update(message=outcome.message, error=outcome.error, url=outcome.url, **outcome.extra)
        response = render(request, self.template + "#result", context)
        if outcome.refresh:
            response["HX-Trigger"] = REFRESH_EVENT
        return response

    # --- the signed confirmation -------------------------------------------------------------

    def _salt(self) -> str:
        return f"paydesk.confirm.{self.name}"

    def seal(self, request: HttpRequest, target: Any, ticket: Ticket | None, params: dict, token: str) -> str:
        return signing.dumps({
            "user": request.user.pk, "target": self.target_id(target), "ticket": ticket.pk if ticket else None,
            "params": params, "token": token,
        }, salt=self._salt(), compress=True)

    def unseal(self, request: HttpRequest, target: Any, raw: str) -> dict:
        """The previewed parameters, or a refusal: nothing else a confirmation may carry."""
        try:
            sealed = signing.loads(raw, salt=self._salt(), max_age=MAX_AGE)
        except signing.SignatureExpired:
            raise ValidationError(_("This confirmation is more than %(minutes)d minutes old; review the action again.")
                                  % {"minutes": MAX_AGE // 60}, code="expired") from None
        except signing.BadSignature:
            raise ValidationError(_("This confirmation is not one Paydesk showed; review the action again."),
                                  code="confirmation") from None
        if (not isinstance(sealed, dict) or sealed.get("user") != request.user.pk
                or sealed.get("target") != self.target_id(target) or not isinstance(sealed.get("params"), dict)):
            raise ValidationError(_("This confirmation was made for something else; review the action again."),
                                  code="confirmation")
        return sealed

    # --- URLs ----------------------------------------------------------------------------------

    def urls(self, route: str, prefix: str) -> list:
        """The form at `route`, its preview and confirm below it: prefix_form, _preview, _confirm."""
        perm = permission_required(self.permission, raise_exception=True)
        return [
            path(route, require_GET(perm(self.form_view)), name=f"{prefix}_form"),
            path(route + "/preview", require_POST(perm(self.preview_view)), name=f"{prefix}_preview"),
            path(route + "/confirm", require_POST(perm(self.confirm_view)), name=f"{prefix}_confirm"),
        ]


# --- form fields ----------------------------------------------------------------------------------


class TokenField(forms.CharField):
    """The form's token; a missing or malformed one is replaced (it is only an idempotency key)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=200, **kwargs)

    def clean(self, value):
        return form_token(super().clean(value))


class ConfirmForm(forms.Form):
    token = TokenField()
