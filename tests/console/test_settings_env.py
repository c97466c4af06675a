"""Settings come from the environment; a bad value stops start-up, naming the variable, never echoing a secret.

Each case starts a fresh Python that runs django.setup(), as manage.py, gunicorn and the
Celery worker do, with one variable set wrong.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

GOOD = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": os.environ.get("HOME", "/tmp"),
    "DJANGO_SETTINGS_MODULE": "console.settings",
    "DEBUG": "0",
    "SECRET_KEY": "settings-env-test-key",
    "DATABASE_URL": "postgres://paydesk@127.0.0.1:5432/paydesk",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "STRIPE_API_KEY": "sk_test_settingsenv",
    "STRIPE_API_BASE": "http://127.0.0.1:8420",
    "STRIPE_WEBHOOK_SECRETS": "whsec_one,whsec_two",
}


def start(**overrides) -> subprocess.CompletedProcess:
    env = dict(GOOD)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_good_settings_start():
    result = start()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "name, value, secret",
    [
        # (variable, bad value, the part that must never be printed, or None if nothing is secret)
        ("DATABASE_URL", "nonsense://", None),
        ("DATABASE_URL", "nonsense://paydesk:hunter2-db-pass@db.internal/paydesk", "hunter2-db-pass"),
        ("DATABASE_URL", "mysql://paydesk:hunter3-db-pass@db.internal/paydesk", "hunter3-db-pass"),
        ("DATABASE_URL", "postgres://paydesk:hunter4-db-pass@db.internal:notaport/paydesk", "hunter4-db-pass"),
        ("CELERY_BROKER_URL", "ftp://x", None),
        ("CELERY_BROKER_URL", "ftp://queue:broker-pass-77@x", "broker-pass-77"),
        ("STRIPE_WEBHOOK_SECRETS", "abc", "abc"),
        ("STRIPE_WEBHOOK_SECRETS", "whsec_fine,sk_live_pasted_by_mistake", "sk_live_pasted_by_mistake"),
        ("DEBUG", "maybe", None),
        ("SECRET_KEY", None, None),  # unset with DEBUG=0
        ("SECRET_KEY", "", None),
        ("STRIPE_API_KEY", "pk_live_x", "pk_live_x"),
        ("STRIPE_API_KEY", "whsec_wrong_kind_of_secret", "whsec_wrong_kind_of_secret"),
        ("STRIPE_API_BASE", "notaurl", None),
        ("STRIPE_API_BASE", "ftp://stripe.internal", None),
        ("STRIPE_WEBHOOK_TOLERANCE", "five minutes", None),
    ],
)
def test_bad_value_stops_start_up_naming_the_variable(name, value, secret):
    result = start(**{name: value})
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{name}={value!r} started anyway"
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line, last_line
    assert name in last_line, last_line
    if secret:
        assert secret not in output


def test_the_suite_runs_its_cache_on_redis_as_production_does():
    """`make test` sets CACHE_URL: presence, navigation counts and the "was this sent" marks of
    Stripe actions run on Redis here, shared across processes, as they do in production."""
    import os

    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if not os.environ.get("CACHE_URL"):
        pytest.skip("CACHE_URL is unset: run the suite through `make test`")
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    cache.set("paydesk:test:shared", 1, 5)
    assert cache.get("paydesk:test:shared") == 1
