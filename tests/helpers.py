"""Helpers every test folder uses, defined once."""

from __future__ import annotations

import contextlib
import threading

from celery import current_app
from django.db import connections
from django.test import TestCase


@contextlib.contextmanager
def eager_tasks(propagate: bool = False):
    """Celery tasks run in the test process when they are queued."""
    conf = current_app.conf
    old = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, propagate
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates = old


@contextlib.contextmanager
def committed():
    """Run the block, then what it left for after its commit (listeners, queued tasks run
    eagerly, and what those queue in turn), as a real commit would: the test's own
    transaction never commits, so on_commit work would otherwise never run."""
    with eager_tasks(), TestCase.captureOnCommitCallbacks(execute=True):
        yield


def in_threads(n: int, work, *, timeout: float = 60) -> list:
    """Run work(i) in n threads released together, each with its own database connection;
    their results in order. A stuck thread or an exception in any fails the test."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def target(i):
        try:
            barrier.wait(timeout=timeout)
            results[i] = work(i)
        except BaseException as exc:  # reported below, with the thread's index
            errors.append((i, exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    assert not errors, errors
    return results


@contextlib.contextmanager
def tasks_run():
    """The names of the Celery tasks run (eagerly) inside the block, in order."""
    from celery.signals import task_prerun

    names: list[str] = []

    def seen(sender=None, **kwargs):
        names.append(sender.name)

    task_prerun.connect(seen, weak=False)
    try:
        yield names
    finally:
        task_prerun.disconnect(seen)


def deliver(type_: str, obj: dict, **kwargs) -> dict:
    """A Stripe event around `obj` stored and applied as the webhook and the worker do, then
    committed, so its listeners (contact linking, the timeline) have run. The payload."""
    from payments.actions.events import apply_event
    from payments.events import store_event
    from tests import factories

    payload = factories.event(type_, obj, **kwargs)
    with committed():
        store_event(payload)
        apply_event(payload["id"])
    return payload


HX = {"HTTP_HX_REQUEST": "true"}


def sealed(response, name: str = "confirmation") -> str:
    """The signed value a preview (its confirmation) or a refusal (its hand-over) carries."""
    import re

    html = response.content.decode()
    found = re.search(rf'name="{name}" value="([^"]+)"', html) or re.search(rf'"{name}": "([^"]+)"', html)
    assert found, f"no {name} in {html[:500]}"
    return found.group(1)


def confirm_through_preview(client, base: str, data: dict):
    """Preview `data` at base/preview as the panel does, then confirm what it showed; the confirm's response."""
    preview = client.post(base + "/preview", data, **HX)
    assert preview.status_code == 200, preview.content
    return client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)


_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  const elt = e.target && e.target.nodeType === 1 ? e.target : null;
  const place = elt && elt.closest("form.cpanel-refund") ? "panel action form" : "page";
  console.log("CSP violation in " + place + ": " + e.violatedDirective + " " + (elt ? elt.outerHTML.slice(0, 200) : ""));
});
"""


def watch_csp(page) -> list[str]:
    """Every Content-Security-Policy violation on this Playwright page from now on, as
    "CSP violation in <page | panel action form>: <directive> <element>" (Chromium's own
    console message doesn't say which element)."""
    found: list[str] = []
    page.add_init_script(_REPORT_CSP_VIOLATIONS)
    page.on("console", lambda msg: found.append(msg.text) if msg.text.startswith("CSP violation") else None)
    return found


CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def chromium_tab(width: int = 1280, height: int = 900, *, console_errors: bool = True):
    """A headless Debian Chromium tab (Playwright) that collects page errors and console errors
    (`tab.errors`; without `console_errors` for a page whose 4xx answers are expected, as a
    refused form's) and CSP violations (`tab.csp`); a test ends asserting both are empty. Needs
    DJANGO_ALLOW_ASYNC_UNSAFE=true: Playwright's sync API runs an event loop in this thread."""
    from pathlib import Path

    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (scripts/chromium.sh installs it)")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        tab = browser.new_page(viewport={"width": width, "height": height})
        tab.set_default_timeout(15_000)
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        if console_errors:
            tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        tab.csp = watch_csp(tab)
        tab.errors = errors
        try:
            yield tab
        finally:
            browser.close()


# The password factories.UserFactory gives everyone.
PASSWORD = "correct horse battery"


def sign_in(page, base_url: str, username: str, next_path: str = "/", password: str = PASSWORD) -> None:
    """Log in through the login form in a browser tab and wait for `next_path` (a busy
    machine may take a while; nothing here is timed)."""
    page.goto(f"{base_url}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_url(f"**{next_path}", timeout=30_000)
