"""/macros/: the list (everyone who works tickets sees the macros their teams may use; admins
see and manage all), the editor with its live preview, deactivate/activate and delete."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.validators import validate_unicode_slug
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from tickets import actions
from tickets.actions.teams import check_placeholders
from tickets.actions.tickets import MACRO_PLACEHOLDERS, macro_body, render_macro
from tickets.models import Macro, Ticket
from tickets.selectors import customer_language

from . import selectors

VIEW_PERM = "tickets.view_macro"
MANAGE_PERM = "tickets.change_macro"
# The picker's buttons: what an agent most often wants in a reply.
PICKER = [
    ("contact.name", pgettext_lazy("macro placeholder", "Customer's name")),
    ("contact.first_name", pgettext_lazy("macro placeholder", "Customer's first name")),
    ("ticket.number", pgettext_lazy("macro placeholder", "Ticket number")),
    ("ticket.subject", pgettext_lazy("macro placeholder", "Ticket subject")),
    ("agent.name", pgettext_lazy("macro placeholder", "Your name")),
]
assert all(key in MACRO_PLACEHOLDERS for key, _label in PICKER)


LANGUAGE_NAMES = {"en": pgettext_lazy("language", "English"), "ja": pgettext_lazy("language", "Japanese")}


def _languages() -> list[tuple[str, str]]:
    """(code, name) of each language a macro can be written in, the default (its `body`) first."""
    default = settings.LANGUAGE_CODE
    return sorted(((code, LANGUAGE_NAMES.get(code, name)) for code, name in settings.LANGUAGES),
                  key=lambda lang: lang[0] != default)


def _language_name(code: str) -> str:
    return str(dict(_languages()).get(code, code))


def _body_field(code: str) -> str:
    return f"body_{code}"


class MacroForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    tags = forms.MultipleChoiceField(label=gettext_lazy("Tags it adds"), required=False,
                                     widget=forms.CheckboxSelectMultiple)
    new_tags = forms.CharField(label=gettext_lazy("New tags"), required=False, max_length=300,
                               help_text=gettext_lazy("Lowercase words joined by hyphens, separated by spaces."))
    teams = forms.MultipleChoiceField(label=gettext_lazy("Teams who see it"), required=False,
                                      widget=forms.CheckboxSelectMultiple,
                                      help_text=gettext_lazy("None chosen: every team sees it."))
    set_status = forms.ChoiceField(label=gettext_lazy("Set status"), required=False)
    set_priority = forms.ChoiceField(label=gettext_lazy("Set priority"), required=False)
    set_team = forms.ChoiceField(label=gettext_lazy("Move to team"), required=False)
    set_assignee = forms.ChoiceField(label=gettext_lazy("Assign to"), required=False)

    def __init__(self, *args, macro: Macro | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for code, name in _languages():
            self.fields[_body_field(code)] = forms.CharField(
                label=name, required=False, max_length=10_000,
                widget=forms.Textarea(attrs={"rows": 7, "lang": code, "data-macro-body": code}))
        keep = ""
        self.fields["tags"].choices = [(t, t) for t in selectors.tag_names(macro.add_tags if macro else ())]
        self.fields["teams"].choices = [(str(t.pk), t.name) for t in selectors.teams()]
        self.fields["set_status"].choices = [(keep, _("Leave as it is"))] + list(Ticket.Status.choices)
        self.fields["set_priority"].choices = [(keep, _("Leave as it is"))] + list(Ticket.Priority.choices)
        self.fields["set_team"].choices = [(keep, _("Leave as it is"))] + [
            (str(t.pk), t.name) for t in selectors.teams()]
        self.fields["set_assignee"].choices = [(keep, _("Leave as it is"))] + [
            (str(u.pk), u.get_full_name() or u.get_username()) for u in selectors.assignable_agents()]
        if macro is not None and macro.set_assignee_id and not any(
                value == str(macro.set_assignee_id) for value, _label in self.fields["set_assignee"].choices):
            self.fields["set_assignee"].choices.append(
                (str(macro.set_assignee_id), macro.set_assignee.get_username()))

    def body_fields(self):
        return [self[_body_field(code)] for code, _name in _languages()]

    def clean_new_tags(self) -> list[str]:
        names = (self.cleaned_data.get("new_tags") or "").replace(",", " ").split()
        for name in names:
            try:
                validate_unicode_slug(name)
            except ValidationError:
                raise ValidationError(_("“%(tag)s” is not a tag: use letters, numbers, hyphens or underscores.")
                                      % {"tag": name[:64]}, code="invalid") from None
            if len(name) > 64:
                raise ValidationError(_("A tag has at most 64 characters."), code="invalid")
        return [n.lower() for n in names][:20]

    def clean(self):
        data = super().clean()
        texts = {code: data.get(_body_field(code)) or "" for code, _name in _languages()}
        for code, text in texts.items():
            if text:
                try:
                    check_placeholders([text])
                except ValidationError as exc:
                    self.add_error(_body_field(code), exc.messages)
        if not any(text.strip() for text in texts.values()):
            raise ValidationError(_("Write the macro's text in at least one language."), code="required")
        return data

    def apply_to(self, macro: Macro) -> tuple[Macro, list[int]]:
        """The form's values on `macro` (not saved) and the chosen team ids."""
        data = self.cleaned_data
        default = settings.LANGUAGE_CODE
        macro.name = data["name"]
        macro.body = data.get(_body_field(default)) or ""
        translations = {k: v for k, v in (macro.translations or {}).items()
                        if k not in dict(settings.LANGUAGES)} if isinstance(macro.translations, dict) else {}
        for code, _name in _languages():
            if code != default and (data.get(_body_field(code)) or "").strip():
                translations[code] = data[_body_field(code)]
        macro.translations = translations
        macro.add_tags = list(dict.fromkeys([*data.get("tags", []), *data.get("new_tags", [])]))
        macro.set_status = data.get("set_status") or ""
        macro.set_priority = data.get("set_priority") or ""
        macro.set_team_id = int(data["set_team"]) if data.get("set_team") else None
        macro.set_assignee_id = int(data["set_assignee"]) if data.get("set_assignee") else None
        return macro, [int(t) for t in data.get("teams", [])]


def _initial(macro: Macro) -> dict:
    translations = macro.translations if isinstance(macro.translations, dict) else {}
    initial = {"name": macro.name, "tags": list(macro.add_tags or []),
               "teams": [str(t.pk) for t in macro.teams.all()], "set_status": macro.set_status,
               "set_priority": macro.set_priority, "set_team": str(macro.set_team_id or ""),
               "set_assignee": str(macro.set_assignee_id or "")}
    for code, _name in _languages():
        initial[_body_field(code)] = macro.body if code == settings.LANGUAGE_CODE else translations.get(code, "")
    return initial


@require_http_methods(["GET"])
@permission_required(VIEW_PERM, raise_exception=True)
def macro_list(request: HttpRequest) -> HttpResponse:
    team = (request.GET.get("team") or "")[:100]
    q = (request.GET.get("q") or "").strip()[:100]
    rows = [{"macro": m, "languages": [_language_name(c) for c in selectors.languages(m)],
             "teams": [t.name for t in m.teams.all()]} for m in selectors.macros(request.user, team=team, q=q)]
    return render(request, "macros/list.html", {
        "rows": rows, "nav": "macros", "teams": selectors.teams(), "team": team, "q": q,
        "can_manage": request.user.has_perm(MANAGE_PERM), "can_add": request.user.has_perm("tickets.add_macro")})


def _editor(request: HttpRequest, macro: Macro | None) -> HttpResponse:
    creating = macro is None
    if request.method == "POST":
        form = MacroForm(request.POST, macro=macro)
    else:
        form = MacroForm(macro=macro, initial=_initial(macro) if macro else {})
    if request.method == "POST" and request.POST.get("preview"):
        return _preview(request, form)
    if request.method == "POST" and form.is_valid():
        target, teams = form.apply_to(macro or Macro())
        try:
            saved = actions.save_macro(actor=request.user, macro=target, teams=teams)
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            messages.success(request, _("Saved the macro “%(name)s”.") % {"name": saved.name})
            return redirect("macro", saved.pk)
    tickets = selectors.recent_tickets()
    chosen = selectors.ticket(request.POST.get("preview_ticket")) if request.method == "POST" else None
    chosen = chosen or (tickets[0] if tickets else None)
    if chosen is not None and chosen not in tickets:
        tickets = [chosen, *tickets]
    context = {"form": form, "macro": macro, "creating": creating, "nav": "macros", "picker": PICKER,
               "tickets": tickets, "preview": _preview_context(request, form, chosen)}
    return render(request, "macros/edit.html", context, status=400 if form.errors else 200)


def _preview_context(request, form: MacroForm, ticket: Ticket | None) -> dict:
    """The macro as the ticket's customer would get it: their language's text (else the
    default), placeholders filled by the real render_macro."""
    if ticket is None:
        return {"ticket": None}
    data = form.data if form.is_bound else form.initial
    texts = {code: str(data.get(_body_field(code)) or "") for code, _name in _languages()}
    default = settings.LANGUAGE_CODE
    draft = Macro(name="preview", body=texts.pop(default, ""), translations={k: v for k, v in texts.items() if v.strip()})
    language = customer_language(ticket.requester, ticket)
    body = macro_body(draft, language)
    own = draft.translations.get(language) or draft.translations.get(language.split("-")[0])
    used = language if language == default or own else default
    problem = ""
    try:
        check_placeholders([body])
    except ValidationError as exc:
        problem = " ".join(exc.messages)
    return {"ticket": ticket, "language": _language_name(language), "used": _language_name(used),
            "fallback": used != language, "code": used, "text": render_macro(draft, ticket=ticket, actor=request.user),
            "empty": not body.strip(), "problem": problem}


def _preview(request: HttpRequest, form: MacroForm) -> HttpResponse:
    ticket = selectors.ticket(request.POST.get("preview_ticket"))
    if ticket is None:
        tickets = selectors.recent_tickets()
        ticket = tickets[0] if tickets else None
    return render(request, "macros/edit.html#preview", {"preview": _preview_context(request, form, ticket)})


@require_http_methods(["GET", "POST"])
@permission_required("tickets.add_macro", raise_exception=True)
def macro_new(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@require_http_methods(["GET", "POST"])
@permission_required(MANAGE_PERM, raise_exception=True)
def macro_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _editor(request, _macro_or_404(pk))


def _macro_or_404(pk) -> Macro:
    found = selectors.macro(pk)
    if found is None:
        raise Http404(_("No such macro."))
    return found


def _set_active(request: HttpRequest, pk: int, active: bool) -> HttpResponse:
    macro = _macro_or_404(pk)
    actions.set_macro_active(actor=request.user, macro=macro, active=active)
    messages.success(request, (_("“%(name)s” is offered on tickets again.") if active else
                               _("“%(name)s” is no longer offered on tickets.")) % {"name": macro.name})
    return redirect("macro", macro.pk)


@require_POST
@permission_required(MANAGE_PERM, raise_exception=True)
def macro_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_active(request, pk, False)


@require_POST
@permission_required(MANAGE_PERM, raise_exception=True)
def macro_activate(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_active(request, pk, True)


@require_http_methods(["GET", "POST"])
@permission_required("tickets.delete_macro", raise_exception=True)
def macro_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm (saying how often it was used); POST deletes."""
    macro = _macro_or_404(pk)
    if request.method == "POST":
        name = macro.name
        actions.delete_macro(actor=request.user, macro=macro)
        messages.success(request, _("Deleted the macro “%(name)s”.") % {"name": name})
        return redirect("macros")
    return render(request, "macros/delete.html", {"macro": macro, "nav": "macros"})
