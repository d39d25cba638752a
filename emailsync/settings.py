"""Settings, read from the environment only.

Every knob an operator may turn is an environment variable; README.md's configuration table lists
them. Development defaults keep `make run` to one command; with DEBUG off the settings refuse to
start without the secrets a real deployment must provide.
"""

import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EMAILSYNC_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def development_secret_key() -> str:
    """A per-checkout key kept under var/, so sessions survive restarts without committing one."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
# The test suite runs with production-like settings but may use generated secrets.
TESTING = env_bool("EMAILSYNC_TESTING", "pytest" in sys.modules)


def missing_secret_key() -> str:
    """Why the settings refuse to start, and exactly what to set (one line: `emailsync` prints it).

    With DEBUG off the key is never read from var/, even when `make run` left one there: a
    production deployment must be given its key (the same on every host, and backed up), and a
    command run beside `make run` should run as `make run` does, with DEBUG=1 (development outbox,
    same key file), or whatever it signs (agency create's login link) would not work there."""
    path = os.path.abspath(VAR_DIR / "secret_key")
    if os.path.exists(path):
        return (
            "SECRET_KEY must be set when DEBUG is off. This installation's development key is "
            f"in {path}: `make run` runs with DEBUG=1, so set DEBUG=1 to run a command against "
            "it (the command then reads that file). In production, set SECRET_KEY to the value "
            "the web app has."
        )
    return (
        "SECRET_KEY must be set when DEBUG is off (in production, the value the web app has). "
        "To try Email Sync on this machine, set DEBUG=1, as `make run` does: it generates a key "
        f"and keeps it in {path} (there is none there yet; if `make run` ran with another "
        "EMAILSYNC_VAR_DIR, set that too)."
    )


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(missing_secret_key())
    SECRET_KEY = development_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG or TESTING else "")


def browser_url(host: str, port: int) -> str:
    """Where a browser reaches a web app bound to host:port (a wildcard bind at the loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


# Links in emails. Unset, they point where `emailsync serve` (and `make run`) runs the web app by
# default, EMAILSYNC_WEB_HOST and EMAILSYNC_WEB_PORT, the address serve gives its own children
# (serve.child_environment): so a command run from another terminal with the same environment
# (`emailsync agency create`'s login link) agrees with the links the running web app sends.
EMAILSYNC_PUBLIC_URL = os.environ.get(
    "EMAILSYNC_PUBLIC_URL",
    browser_url(
        os.environ.get("EMAILSYNC_WEB_HOST", "127.0.0.1"), env_int("EMAILSYNC_WEB_PORT", 8000)
    ),
).rstrip("/")
EMAILSYNC_INBOUND_DOMAIN = os.environ.get("EMAILSYNC_INBOUND_DOMAIN", "in.emailsync.localhost")
EMAILSYNC_FROM_EMAIL = os.environ.get("EMAILSYNC_FROM_EMAIL", "reviews@emailsync.localhost")
EMAILSYNC_SMTP_HOSTNAME = os.environ.get("EMAILSYNC_SMTP_HOSTNAME", "mx.emailsync.localhost")
EMAILSYNC_TRUSTED_AUTHSERV_IDS = env_list("EMAILSYNC_TRUSTED_AUTHSERV_IDS")
# DNS resolvers for DKIM key lookups ("host" or "host:port"); empty uses the system's.
EMAILSYNC_DNS_RESOLVERS = env_list("EMAILSYNC_DNS_RESOLVERS")
# Outbound review requests: optional DKIM signing (relay via plain SMTP) and record retention.
EMAILSYNC_DKIM_DOMAIN = os.environ.get("EMAILSYNC_DKIM_DOMAIN", "")
EMAILSYNC_DKIM_SELECTOR = os.environ.get("EMAILSYNC_DKIM_SELECTOR", "")
EMAILSYNC_DKIM_KEY_FILE = os.environ.get("EMAILSYNC_DKIM_KEY_FILE", "")
EMAILSYNC_TRIGGER_RETENTION_DAYS = env_int("EMAILSYNC_TRIGGER_RETENTION_DAYS", 90)
# How long a listener trusts what it read about an address or an agency's rules.
# Bearer token for /metrics (Prometheus text format); unset, /metrics is a 404.
EMAILSYNC_METRICS_TOKEN = os.environ.get("EMAILSYNC_METRICS_TOKEN", "")
EMAILSYNC_LISTENER_CACHE_SECONDS = env_int("EMAILSYNC_LISTENER_CACHE_SECONDS", 10)
# How long the listener gathers finished messages into one commit (milliseconds); 1 gave the
# best rate in bench/ingest.py (0, 2 and 5 were slower on both databases).
EMAILSYNC_GROUP_COMMIT_MS = env_int("EMAILSYNC_GROUP_COMMIT_MS", 1)
# Abuse limits on public forms, per client address and window (seconds).
EMAILSYNC_REVIEW_POSTS_PER_IP = env_int("EMAILSYNC_REVIEW_POSTS_PER_IP", 30)
EMAILSYNC_REVIEW_POST_WINDOW = env_int("EMAILSYNC_REVIEW_POST_WINDOW", 3600)
EMAILSYNC_REPORTS_PER_IP = env_int("EMAILSYNC_REPORTS_PER_IP", 10)
EMAILSYNC_REPORT_WINDOW = env_int("EMAILSYNC_REPORT_WINDOW", 3600)
# Sign-up is open by default; an operator who provisions agencies only by CLI turns it off.
EMAILSYNC_SIGNUP_OPEN = env_bool("EMAILSYNC_SIGNUP_OPEN", True)
# Rendered public pages (agency, recruiter, directory) are cached per process under a key that
# changes with every change shown on them (emailsync/profiles/views.py); entries expire after
# this many seconds whatever happens (0 turns the cache off).
EMAILSYNC_PAGE_CACHE_SECONDS = env_int("EMAILSYNC_PAGE_CACHE_SECONDS", 600)
# On PostgreSQL the few hot statements (the listener's batch writes, the public pages' reviews)
# are server-side prepared (planned once per connection). Turn off behind a transaction-mode
# pooler that cannot keep prepared statements.
EMAILSYNC_PREPARED_QUERIES = env_bool("EMAILSYNC_PREPARED_QUERIES", True)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "emailsync",
        # A page is 10–25 kB: at most ~50 MB per web process.
        "OPTIONS": {"MAX_ENTRIES": env_int("EMAILSYNC_CACHE_ENTRIES", 2000)},
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "emailsync.throttling",
    "emailsync.agencies",
    "emailsync.review_requests",
    "emailsync.outbox",
    "emailsync.inbound",
    "emailsync.reviews",
    "emailsync.profiles",
    "emailsync.placements",
    "emailsync.workspace",
    "emailsync.operations",
    "emailsync.api",
    "emailsync.privacy",
]

MIDDLEWARE = [
    "emailsync.throttling.middleware.ProxiedClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "emailsync.operations.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "emailsync.agencies.middleware.CurrentAgencyMiddleware",
]

ROOT_URLCONF = "emailsync.urls"
WSGI_APPLICATION = "emailsync.wsgi.application"
ASGI_APPLICATION = "emailsync.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "emailsync" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "emailsync.agencies.context_processors.current_agency",
            ],
        },
    },
]


def database_settings() -> dict:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / 'emailsync.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
        # two writers queue on the busy timeout instead of failing with "database is locked".
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["CONN_MAX_AGE"] = 0 if TESTING else config["CONN_MAX_AGE"]
    else:
        options = config.setdefault("OPTIONS", {})
        # A database host that stops answering must not hold SMTP sessions, workers or web
        # requests for minutes: stop trying to connect after a few seconds (the listener then
        # answers 451 and the MTA retries) and notice a silently dead connection by keepalives.
        options.setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))
        for key, value in (
            ("keepalives", 1),
            ("keepalives_idle", 30),
            ("keepalives_interval", 10),
            ("keepalives_count", 3),
        ):
            options.setdefault(key, value)
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_settings()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "agencies.User"
AUTHENTICATION_BACKENDS = ["emailsync.agencies.auth.EmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "agency-home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3
# Failed logins allowed per account and per client address within the window before throttling.
EMAILSYNC_LOGIN_FAILURES_ALLOWED = env_int("EMAILSYNC_LOGIN_FAILURES_ALLOWED", 5)
EMAILSYNC_LOGIN_FAILURE_WINDOW = env_int("EMAILSYNC_LOGIN_FAILURE_WINDOW", 15 * 60)
EMAILSYNC_INVITATION_DAYS = env_int("EMAILSYNC_INVITATION_DAYS", 7)
# Password-reset emails to one address per hour (anyone may ask for anyone's link).
EMAILSYNC_PASSWORD_RESETS_PER_ADDRESS = env_int("EMAILSYNC_PASSWORD_RESETS_PER_ADDRESS", 3)
# Sign-up attempts per client address per hour (each says whether an address has an account).
EMAILSYNC_SIGNUPS_PER_ADDRESS = env_int("EMAILSYNC_SIGNUPS_PER_ADDRESS", 10)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "emailsync" / "locale"]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "emailsync" / "static"]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("EMAILSYNC_MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING
if WHITENOISE_USE_FINDERS:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root

# Outbound mail: Django's EMAIL_* settings for SMTP, or any backend (an anymail ESP) by path.
# With no server configured in development, mail is kept in the development outbox instead.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", EMAILSYNC_FROM_EMAIL)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
DEVELOPMENT_OUTBOX = DEBUG and not EMAIL_HOST and "EMAIL_BACKEND" not in os.environ
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "emailsync.operations.outbox.DevelopmentOutboxBackend"
    if DEVELOPMENT_OUTBOX
    else "django.core.mail.backends.smtp.EmailBackend",
)
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}

# Security. Production (DEBUG off) assumes HTTPS at the edge, as every deployment in DEPLOY.md does.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind the reverse proxy of DEPLOY.md: the client address comes from X-Forwarded-For's right-most
# entry (emailsync/throttling/middleware.py) and, in production, HTTPS from X-Forwarded-Proto.
EMAILSYNC_BEHIND_PROXY = env_bool("EMAILSYNC_BEHIND_PROXY", False)
if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = env_bool("EMAILSYNC_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env_bool("EMAILSYNC_SSL_REDIRECT", False)
    SECURE_HSTS_SECONDS = env_int("EMAILSYNC_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("EMAILSYNC_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("EMAILSYNC_HSTS_PRELOAD", False)
    if EMAILSYNC_BEHIND_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The REST API (docs/API.md): requests per API key per minute, and whether outgoing webhooks may
# reach private or loopback addresses (never in production: SSRF).
EMAILSYNC_API_RATE_LIMIT = env_int("EMAILSYNC_API_RATE_LIMIT", 600)
EMAILSYNC_WEBHOOK_ALLOW_PRIVATE = DEBUG or TESTING
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        "permission_denied": {
            "()": "emailsync.operations.log_filters.PermissionDeniedWithoutTraceback"
        },
        "tokens_out_of_paths": {"()": "emailsync.operations.log_filters.TokensOutOfPaths"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["tokens_out_of_paths"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # Django's own handlers for "django" (a console one while DEBUG is on) printed every
        # record a second time beside the root's: one handler, the root's, for everything.
        "django": {"handlers": [], "level": "INFO"},
        "django.request": {"filters": ["permission_denied"]},
        # aiosmtpd logs every command at INFO (recipient addresses with their tokens) and every
        # DATA line at DEBUG (message content): never below WARNING, whatever LOG_LEVEL says.
        "mail.log": {"level": "WARNING"},
    },
}
