from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from .. import selectors


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "console/home.html", {"overview": selectors.overview(request.user), "nav": "home"})


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """The top bar: one match goes straight to the customer (or the Stripe object); several list."""
    q = request.GET.get("q", "")[:200]
    url, matches = selectors.search(request.user, q)
    if url:
        return redirect(url)
    return render(request, "customers/search.html", {"q": q, "matches": matches})


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
