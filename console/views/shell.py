from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from .. import selectors


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "console/home.html", {"queue": selectors.home_queue(request.user),
                                                 "overview": selectors.overview(request.user), "nav": "home"})


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """The top bar: an exact Stripe id, "#1042" or a LINE id goes straight there; anything else
    lists what it finds, grouped by kind. An HTMX request gets the results list alone."""
    from .. import search as finder

    if not finder.can_search(request.user):
        raise PermissionDenied
    q = request.GET.get("q", "")[:200].strip()
    url = finder.jump(request.user, q)
    if url:
        return redirect(url)
    found = finder.results(request.user, q)
    if found["only_ticket"]:
        return redirect(found["only_ticket"])
    template = "search/_results.html" if request.htmx and not request.htmx.boosted else "search/results.html"
    return render(request, template, {"found": found, "q": q, "nav": "search"})


@require_GET
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for a load balancer: the database answers. Says nothing else."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"ok": False}, status=503)
    return JsonResponse({"ok": True})
