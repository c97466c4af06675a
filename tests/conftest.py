"""Fixtures shared by every test: real PostgreSQL (pytest-django), real Redis, localstripe over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import factories, helpers

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_test_primary_3f9a"
OLD_WEBHOOK_SECRET = "whsec_test_rotated_out_77c1"


def pytest_configure(config):
    """Under pytest-xdist each worker keeps its cache keys apart (the Redis db is shared)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        from django.conf import settings

        settings.CACHES["default"]["KEY_PREFIX"] = f"paydesk-test-{worker}"


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache (Redis in `make test`, as in production): this
    worker's keys only, so tests running beside it in another worker keep theirs."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def english_to_start():
    """Each test starts in the console's default language. A request activates its reader's
    language on the thread and nothing turns it off afterwards (a server's next request
    activates its own), so a Japanese request in one test must not leak into the next."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET]
    settings.STRIPE_API_KEY = ""
    settings.STRIPE_API_BASE = ""
    # Nothing in the suite reaches LINE's real API: a test that talks to LINE sets its stand-in;
    # any other call (a profile lookup on a new conversation) is refused at once, locally.
    settings.LINE_API_BASE = "http://127.0.0.1:9"
    # PBKDF2 costs ~0.1-1 s per user under load; the hasher is not what these tests test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Static files come from the finders in tests: no collectstatic step.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    return settings


class LocalStripe:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}"
        self.key = "sk_test_paydesk_localstripe"

    def client(self, version: str = "2017-08-15"):
        import stripe

        return stripe.StripeClient(self.key, base_addresses={"api": self.url}, stripe_version=version, max_network_retries=0)

    def flush(self):
        requests.delete(f"{self.url}/_config/data", timeout=5)


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory):
    """localstripe on a free port with its own (in-memory) state, for the whole session."""
    state = tmp_path_factory.mktemp("localstripe") / "state.pickle"
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.demo.localstripe_server", "--port", "0", "--state", str(state)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"localstripe did not start: {line!r}")
    server = LocalStripe(proc, int(line.split()[1]))
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            requests.get(f"{server.url}/v1/customers", headers={"Authorization": f"Bearer {server.key}"}, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:  # aiohttp's shutdown can linger; its state is in memory anyway
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def localstripe(localstripe_server, settings):
    """Point the app's Stripe client at localstripe; each test starts from an empty account."""
    localstripe_server.flush()
    settings.STRIPE_API_KEY = localstripe_server.key
    settings.STRIPE_API_BASE = localstripe_server.url
    yield localstripe_server
    localstripe_server.flush()


@pytest.fixture
def post_event(client):
    """POST a signed event to the webhook like Stripe does; returns the response."""

    def post(payload, secret=WEBHOOK_SECRET, timestamp=None, headers=None):
        body, signature = factories.signed(payload, secret, timestamp)
        extra = {"HTTP_STRIPE_SIGNATURE": signature}
        extra.update(headers or {})
        return client.generic("POST", "/stripe/webhook/", body, content_type="application/json", **extra)

    return post


@pytest.fixture
def agent(db):
    return factories.UserFactory(username="agent", role="agent")


@pytest.fixture
def finance(db):
    return factories.UserFactory(username="finance", role="finance")


@pytest.fixture
def admin_user(db):
    return factories.UserFactory(username="admin", role="admin", is_staff=True)


ROLE_FIXTURES = ("agent", "finance", "admin_user")


@pytest.fixture
def no_role(db):
    """Logged in, but in no role: the wrong role for every page that needs one."""
    return factories.UserFactory(username="visitor")


@pytest.fixture
def as_user(client):
    """The test client, logged in as the given user."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def eager_tasks():
    """Celery tasks run in-process for this test, so a queued task has its effect here."""
    with helpers.eager_tasks():
        yield


@pytest.fixture
def committed(eager_tasks):
    """committed(): a block whose after-commit work (listeners, queued tasks) runs as a commit
    would; tasks stay eager for the rest of the test."""
    return helpers.committed
