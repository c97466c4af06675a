"""Paydesk settings: everything that differs between machines comes from the environment."""

import datetime as _dt
from pathlib import Path

import stripe as _stripe_sdk
from django.core.exceptions import ImproperlyConfigured

from .env import (
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_str,
    env_stripe_secrets,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-dev-key-only-for-DEBUG"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "anymail",
    "axes",
    "audit",
    "payments",
    "tickets",
    "console",
    "console.workflows",
    "console.disputes",
    "console.assist",
    "console.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost but for the above, so error pages and static files carry the policy too.
    "console.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The browser's language until the person chooses one (console.middleware.PreferencesMiddleware);
    # early, so even a refusal below is in the reader's language.
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the database with what the request says (the session cookie first).
    "console.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Default deny: every view needs a login unless it is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # The agent's own time zone and language (console.UserPreference) over the defaults.
    "console.middleware.PreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Refusals answered with a fragment are swapped in place, even in DEBUG (see the class).
    "console.middleware.FragmentRefusalMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.shell",
            ],
        },
    }
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'paydesk.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded demo database: WAL and a busy timeout let the server and the
    # in-process tasks share the file without "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes counts failed logins (the console's and the admin's) per username and address
# and refuses that pair for a while after too many; an admin lifts a lockout from Django
# admin (console.actions.unlock_login, audited). The first backend only checks the lockout.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = _dt.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "console.views.login.locked_out"
AXES_ENABLE_ADMIN = False  # console/admin.py registers the attempts with an audited unlock
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not axes' business here
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in with the company's identity provider (OpenID Connect, mozilla-django-oidc): off
# unless OIDC_RP_CLIENT_ID is set, and then the provider's endpoints must be set too. They are
# taken as given (copy them from the provider's /.well-known/openid-configuration): nothing is
# fetched from the provider at start-up. console/sso.py signs a person in to the active account
# with their verified email; the password form stays. README: "Sign-in with your identity provider".
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID").strip()
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME").strip()  # the button's "Sign in with …"
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER").strip()  # when set, an ID token from another issuer is refused
OIDC_OP_AUTHORIZATION_ENDPOINT = env_url("OIDC_OP_AUTHORIZATION_ENDPOINT", "", ("https", "http"))
OIDC_OP_TOKEN_ENDPOINT = env_url("OIDC_OP_TOKEN_ENDPOINT", "", ("https", "http"))
OIDC_OP_USER_ENDPOINT = env_url("OIDC_OP_USER_ENDPOINT", "", ("https", "http"))
OIDC_OP_JWKS_ENDPOINT = env_url("OIDC_OP_JWKS_ENDPOINT", "", ("https", "http"))
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256").strip()
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10, minimum=1)  # seconds per call to the provider
# Paydesk creates accounts itself (console.sso), with no role, and only when this is on.
OIDC_CREATE_USER = False
OIDC_CREATE_USERS = env_bool("OIDC_CREATE_USERS", False)
# Email domains allowed to sign in this way ("example.com,example.jp"); empty: any.
OIDC_ALLOWED_DOMAINS = [d.lower().lstrip("@") for d in env_list("OIDC_ALLOWED_DOMAINS")]
if OIDC_ENABLED:
    _missing = [name for name in ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT",
                                  "OIDC_OP_JWKS_ENDPOINT") if not globals()[name]]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set, so {', '.join(_missing)} must be set too "
                                   "(manage.py oidc_endpoints <issuer URL> prints them)")
    if OIDC_RP_SIGN_ALGO not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"):
        raise ImproperlyConfigured("OIDC_RP_SIGN_ALGO must be RS256 (or RS384/RS512/ES256/ES384/ES512)")
    INSTALLED_APPS.append("mozilla_django_oidc")
    # Last: the password backends never see the provider's answer, and this one never sees a password.
    AUTHENTICATION_BACKENDS.append("console.sso.PaydeskOIDCBackend")
# A sign-in at the identity provider is not a password guess: axes neither counts nor locks it
# (the provider has its own lockouts), and a password lockout doesn't stop it (console.sso).
AXES_WHITELIST_CALLABLE = "console.sso.axes_skips"

LANGUAGE_CODE = "en"
# The console speaks English and Japanese; each person chooses at /account/ (the browser's
# language until they do). What a customer receives follows the customer's language instead.
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Scripts only from our own static files: no inline <script>, no on* attributes, no eval
# (base.html tells htmx not to evaluate hx-on and js: attributes). Inline styles stay
# allowed: style attributes remain in the sync page's bars, the admin's JSON and the
# self-contained 500 page (and htmx adds its indicator <style>); a style can't run code.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    # data: the stylesheets' small SVG icons; LINE's CDN: the LINE profile pictures shown on
    # contacts (tickets.line_profile stores LINE's URL, the browser loads it from there).
    "img-src 'self' data: https://profile.line-scdn.net https://obs.line-scdn.net",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", "", ("redis", "rediss", "amqp", "memory"))
# Unset broker: tasks run in-process (the demo only); production and tests set a broker.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4, minimum=1)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection after every task unless this is set,
# so each task paid for a new PostgreSQL connection. console/celery.py recycles connections
# the way a request does instead (CONN_MAX_AGE, and dropped after an error).
CELERY_DB_REUSE_MAX = 10**9
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # How long an unacknowledged task waits before Redis may hand it to another worker.
    # A killed worker's tasks come back once they are this old, when a worker starts or at
    # kombu's periodic restore (about every 100 s), whichever comes first.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=1),
}
CELERY_BEAT_SCHEDULE = {
    "stripe-reconcile": {
        "task": "payments.tasks.reconcile_events",
        "schedule": env_int("STRIPE_RECONCILE_EVERY", 600, minimum=30),
    },
    "stripe-requeue-stale": {
        "task": "payments.tasks.requeue_stale_events",
        "schedule": 60,
    },
    "tickets-requeue-stale": {
        "task": "tickets.tasks.requeue_stale",
        "schedule": 60,
    },
    "workflows-requeue-stale": {
        "task": "console.workflows.tasks.requeue_stale_runs",
        "schedule": 60,
    },
    "workflows-schedules": {
        "task": "console.workflows.tasks.run_schedules",
        "schedule": 60,
    },
    # Disputes due within 72 hours without evidence: a finance ticket (or the linked one
    # escalated), once per dispute (console.disputes.reminders).
    "disputes-remind-due": {
        "task": "console.disputes.tasks.remind_due_disputes",
        "schedule": 3600,
    },
}

# --- Stripe ---------------------------------------------------------------------------
STRIPE_API_KEY = env_str("STRIPE_API_KEY")
if STRIPE_API_KEY and not STRIPE_API_KEY.startswith(("sk_", "rk_")):
    raise ImproperlyConfigured("STRIPE_API_KEY must be a secret (sk_) or restricted (rk_) key")
STRIPE_API_BASE = env_url("STRIPE_API_BASE", "", ("http", "https"))
STRIPE_WEBHOOK_SECRETS = env_stripe_secrets("STRIPE_WEBHOOK_SECRETS")
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300, minimum=1)
STRIPE_WEBHOOK_MAX_BYTES = 1024 * 1024
# The API version the mirror is written for; events of another version are refetched
# when a key is configured.
STRIPE_API_VERSION = env_str("STRIPE_API_VERSION", _stripe_sdk.api_version)
STRIPE_APPLY_MAX_RETRIES = env_int("STRIPE_APPLY_MAX_RETRIES", 6, minimum=0)
# Seconds before a Stripe API call gives up (the SDK's own default is 80): an agent waits
# on refunds and cancellations, and a retry with the same idempotency key is safe.
STRIPE_API_TIMEOUT = env_int("STRIPE_API_TIMEOUT", 30, minimum=1)

# Largest refund each role may issue, per currency in minor units (10000 = $100.00,
# 15000 = ¥15,000); "*" is for currencies not listed (0: that role cannot refund them).
# None: no limit. A person with several roles gets the most generous of them; a role
# not listed here cannot refund at all. Override with JSON in PAYMENTS_REFUND_LIMITS.
PAYMENTS_REFUND_LIMITS = {
    "agent": {"usd": 10000, "eur": 10000, "gbp": 10000, "cad": 15000, "aud": 15000, "jpy": 15000, "*": 0},
    "finance": None,
    "admin": None,
    # What workflows refund on their own (console/workflows): small amounts, by default under
    # the usual dispute fee; larger refunds stay with people.
    "workflow": {"usd": 2000, "eur": 2000, "gbp": 2000, "cad": 2500, "aud": 3000, "jpy": 3000, "*": 0},
}
# Where people open the console (https://paydesk.example): emails (a workflow's notification)
# link to it; without it they carry the page's path only.
CONSOLE_BASE_URL = env_url("CONSOLE_BASE_URL", "", ("http", "https"))
# Where the internet (LINE's servers) reaches Paydesk: the images of LINE replies are fetched
# from signed, expiring URLs under it, which need https. The console's address unless set
# (set it when the console itself is only reachable inside a VPN).
PAYDESK_PUBLIC_URL = env_url("PAYDESK_PUBLIC_URL", CONSOLE_BASE_URL, ("http", "https"))
# How long the signed URL of a LINE reply's image works.
TICKETS_LINE_IMAGE_URL_MAX_AGE_DAYS = env_int("TICKETS_LINE_IMAGE_URL_MAX_AGE_DAYS", 7, minimum=1)
# Disputes: the shop's policies quoted in assembled evidence, and the font (with Japanese) the
# customer's conversations are written in as a PDF (Debian's fonts-noto-cjk; a .ttc and its index).
DISPUTES_REFUND_POLICY = env_str("DISPUTES_REFUND_POLICY", "")
DISPUTES_CANCELLATION_POLICY = env_str("DISPUTES_CANCELLATION_POLICY", "")
DISPUTES_PDF_FONT = env_str("DISPUTES_PDF_FONT", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DISPUTES_PDF_FONT_INDEX = env_int("DISPUTES_PDF_FONT_INDEX", 0, minimum=0)

# Assist (console/assist): read each customer message (intent, entities, linked Stripe objects)
# and draft the reply. Offline by default; a language model only when its key is set.
ASSIST_ENABLED = env_bool("ASSIST_ENABLED", True)
ASSIST_CONFIDENCE_THRESHOLD = env_float("ASSIST_CONFIDENCE_THRESHOLD", 0.25)
ASSIST_LLM_API_KEY = env_str("ASSIST_LLM_API_KEY", "")
ASSIST_LLM_BASE_URL = env_str("ASSIST_LLM_BASE_URL", "")  # any OpenAI-compatible endpoint; "" is OpenAI's
ASSIST_LLM_MODEL = env_str("ASSIST_LLM_MODEL", "gpt-4o-mini")
ASSIST_LLM_TIMEOUT = env_float("ASSIST_LLM_TIMEOUT", 10.0, minimum=1.0, maximum=120.0)
# The user workflows act as: their role is "workflow"; audit rows and notes name this user.
WORKFLOWS_SERVICE_USER = env_str("WORKFLOWS_SERVICE_USER", "workflows")
# The shop's time zone: a workflow scheduled "every day at 09:00" runs at 09:00 there.
SHOP_TIME_ZONE = env_str("SHOP_TIME_ZONE", TIME_ZONE)
# The team (its slug) that approves refunds above an agent's limit: "Ask finance" on a
# refused refund puts the ticket in its view with a note of what to refund.
CONSOLE_FINANCE_TEAM = env_str("CONSOLE_FINANCE_TEAM", "finance")
# Where a phone number written without its country is (tickets.identity.normalise_phone).
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "JP")
# Where a ticket goes once finance approved or declined its refund: back to the agent who
# asked ("requester"), or it stays with finance ("finance").
CONSOLE_APPROVAL_RETURN = env_str("CONSOLE_APPROVAL_RETURN", "requester")
if env_str("PAYMENTS_REFUND_LIMITS"):
    import json as _json

    try:
        PAYMENTS_REFUND_LIMITS = _json.loads(env_str("PAYMENTS_REFUND_LIMITS"))
    except ValueError:
        raise ImproperlyConfigured("PAYMENTS_REFUND_LIMITS must be JSON like {\"agent\": {\"usd\": 10000, \"*\": 0}, \"finance\": null}") from None



# Error reports (the DEBUG page, error emails) hide every configured secret, with DEBUG on too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "console.reporting.SecretsFilter"

# --- Logging: secrets never reach the log --------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # The SDK logs request lines; keep it quiet so keys or bodies never appear.
        "stripe": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "support@paydesk.localhost")

# --- Cache: who has a ticket open (presence) and the inbox counts ----------------------
# Must be shared by every web process in production (Redis: CACHE_URL=redis://host:6379/2);
# without CACHE_URL each process keeps its own (fine for the demo's single process and tests).
CACHE_URL = env_url("CACHE_URL", "", ("redis", "rediss"))
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                "KEY_PREFIX": "paydesk"}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Tickets --------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"
# Per priority: (first response, resolution) targets, counted from the ticket's creation.
TICKETS_SLA = {
    "urgent": (_dt.timedelta(hours=1), _dt.timedelta(hours=4)),
    "high": (_dt.timedelta(hours=4), _dt.timedelta(hours=24)),
    "normal": (_dt.timedelta(hours=24), _dt.timedelta(hours=72)),
    "low": (_dt.timedelta(hours=48), _dt.timedelta(days=7)),
}
# Larger inbound attachments are refused (name and size kept, a note on the ticket).
TICKETS_ATTACHMENT_MAX_BYTES = env_int("TICKETS_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=0)
# An agent's files on one reply or note, together (each is also held to the limit above).
TICKETS_MESSAGE_ATTACHMENTS_MAX_BYTES = env_int("TICKETS_MESSAGE_ATTACHMENTS_MAX_BYTES", 25 * 1024 * 1024, minimum=0)
# The address replies come from and customers write to.
TICKETS_EMAIL_FROM = env_str("TICKETS_EMAIL_FROM", DEFAULT_FROM_EMAIL)
# The domain in the Message-ID of outgoing replies.
TICKETS_EMAIL_DOMAIN = env_str("TICKETS_EMAIL_DOMAIN", TICKETS_EMAIL_FROM.rpartition("@")[2] or "paydesk.localhost")
# Bearer token for POST /api/contacts/link (integrations); empty disables the endpoint.
TICKETS_API_TOKEN = env_str("TICKETS_API_TOKEN")
TICKETS_DELIVERY_MAX_RETRIES = env_int("TICKETS_DELIVERY_MAX_RETRIES", 5, minimum=0)
LINE_CHANNEL_SECRET = env_str("LINE_CHANNEL_SECRET")
LINE_CHANNEL_ACCESS_TOKEN = env_str("LINE_CHANNEL_ACCESS_TOKEN")
LINE_API_BASE = env_url("LINE_API_BASE", "https://api.line.me", ("http", "https"))
# A LINE contact's profile (name, picture) is fetched again on their next message once
# older than this many days; retried this many times when LINE is busy (429, 5xx).
TICKETS_LINE_PROFILE_MAX_AGE_DAYS = env_int("TICKETS_LINE_PROFILE_MAX_AGE_DAYS", 7, minimum=0)
TICKETS_LINE_PROFILE_MAX_RETRIES = env_int("TICKETS_LINE_PROFILE_MAX_RETRIES", 8, minimum=0)
LINE_WEBHOOK_MAX_BYTES = 1024 * 1024
# Inbound email through anymail's webhooks (/anymail/<esp>/inbound/) is authenticated
# with HTTP basic auth "user:password" set here and at the provider.
ANYMAIL = {"WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET")} if env_str("ANYMAIL_WEBHOOK_SECRET") else {}
# The email providers whose inbound webhook is accepted (e.g. "postmark", "mailgun"); the
# others' routes answer 404. Provider-specific settings (signing keys) go in ANYMAIL as usual.
TICKETS_INBOUND_EMAIL_ESPS = env_list("TICKETS_INBOUND_EMAIL_ESPS", [])
