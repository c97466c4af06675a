"""/people/: admins add people, change their role and teams, deactivate or reactivate them and
send a password link; /account/password/<uid>/<token>/ is where the link lands."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ..roles import role_label
from .. import sso
from . import actions, selectors


class PersonForm(forms.Form):
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=gettext_lazy("Email"), max_length=254)
    role = forms.ChoiceField(label=gettext_lazy("Role"))
    teams = forms.MultipleChoiceField(label=gettext_lazy("Teams"), required=False,
                                      widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, role_label(r).capitalize()) for r in actions.PEOPLE_ROLES]
        self.fields["teams"].choices = [(str(t.pk), t.name) for t in selectors.teams()]


class NewPersonForm(PersonForm):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    language = forms.ChoiceField(label=gettext_lazy("Invitation in"), choices=settings.LANGUAGES, required=False)

    field_order = ["username", "first_name", "last_name", "email", "role", "teams", "language"]


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@require_http_methods(["GET"])
@permission_required("auth.view_user", raise_exception=True)
def people_list(request: HttpRequest) -> HttpResponse:
    rows = [{"user": u, "role": role_label(selectors.role_of(u)), "teams": [t.name for t in u.ticket_teams.all()],
             "open_tickets": u.open_tickets} for u in selectors.people()]
    return render(request, "people/list.html", {"rows": rows, "nav": "people",
                                                "can_add": request.user.has_perm("auth.add_user")})


@require_http_methods(["GET", "POST"])
@permission_required("auth.add_user", raise_exception=True)
def person_new(request: HttpRequest) -> HttpResponse:
    form = NewPersonForm(request.POST or None, initial={"role": "agent", "language": get_language()[:2]})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = actions.create_person(actor=request.user, username=data["username"], email=data["email"],
                                         first_name=data["first_name"], last_name=data["last_name"],
                                         role=data["role"], teams=[int(t) for t in data["teams"]],
                                         language=data["language"], base_url=request.build_absolute_uri("/"))
        except ValidationError as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, _("%(name)s was added and sent a link to set their password.")
                             % {"name": user.get_username()})
            return redirect("person", user.pk)
    return render(request, "people/new.html", {"form": form, "nav": "people"}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@permission_required("auth.change_user", raise_exception=True)
def person_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = selectors.person(pk)
    if user is None:
        raise Http404(_("No such person."))
    initial = {"first_name": user.first_name, "last_name": user.last_name, "email": user.email,
               "role": selectors.role_of(user), "teams": [str(t) for t in selectors.team_ids(user)]}
    form = PersonForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.update_person(actor=request.user, user=user, email=data["email"], first_name=data["first_name"],
                                  last_name=data["last_name"], role=data["role"],
                                  teams=[int(t) for t in data["teams"]])
        except ValidationError as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, _("Saved."))
            return redirect("person", user.pk)
    return render(request, "people/person.html", {"person": user, "form": form, "nav": "people",
                                                  "sso_enabled": sso.enabled(), "sso_provider": sso.provider_name(),
                                                  "last_sso": selectors.last_sso_sign_in(user)},
                  status=400 if form.errors else 200)


def _act(request: HttpRequest, pk: int, do) -> HttpResponse:
    user = selectors.person(pk)
    if user is None:
        raise Http404(_("No such person."))
    try:
        message = do(user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, message)
    return redirect("person", user.pk)


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def person_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    def do(user):
        count = actions.deactivate_person(actor=request.user, user=user)
        return ngettext("%(name)s can no longer sign in; %(count)s open ticket went back to the queue.",
                        "%(name)s can no longer sign in; %(count)s open tickets went back to the queue.",
                        count) % {"name": user.get_username(), "count": count}
    return _act(request, pk, do)


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def person_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    def do(user):
        actions.reactivate_person(actor=request.user, user=user)
        return _("%(name)s can sign in again.") % {"name": user.get_username()}
    return _act(request, pk, do)


@require_POST
@permission_required("auth.change_user", raise_exception=True)
def person_password_link(request: HttpRequest, pk: int) -> HttpResponse:
    def do(user):
        actions.send_password_link(actor=request.user, user=user, language=get_language()[:2],
                                   base_url=request.build_absolute_uri("/"))
        return _("A link to set a new password was sent to %(email)s.") % {"email": user.email}
    return _act(request, pk, do)


# Where the emailed link lands: Django's own view, outside the login wall.
password_set = login_not_required(auth_views.PasswordResetConfirmView.as_view(
    template_name="people/password_set.html", success_url=reverse_lazy("password_set_done"),
    post_reset_login=False))
password_set_done = login_not_required(auth_views.PasswordResetCompleteView.as_view(
    template_name="people/password_set_done.html"))
