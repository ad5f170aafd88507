"""Settings for returns-portal, read from the environment (django-environ).

Every variable is listed in `.env.example`. The *embedded default* (DESIGN.md
section 1): with `DATABASE_URL` unset the database is SQLite at
`<DATA_DIR>/db.sqlite3`; with `REDIS_URL` unset Celery uses kombu's
`filesystem://` broker in folders derived from the database file and Django
uses its database cache. The two choices are independent.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if Path(_env_file).is_file():
    env.read_env(_env_file)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG is on.")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG"  # noqa: S105

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media"))).resolve()
MEDIA_URL = (
    "/media/"  # never served directly: photos and labels go through permission-checked views
)

BASE_DOMAIN = env.str("BASE_DOMAIN", default="localhost").lower().rstrip(".")
PUBLIC_SCHEME = env.str("PUBLIC_SCHEME", default="http" if DEBUG else "https")
PUBLIC_PORT = env.int("PUBLIC_PORT", default=8000 if DEBUG else 0) or None
# Host validation is done by the tenancy middleware (BASE_DOMAIN, tenant
# sub-domains and TenantDomain rows, which staff add at run time); anything
# else is a 404 before a view runs. ALLOWED_HOSTS may narrow it further.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
LABEL_SYNC_TIMEOUT = env.float("LABEL_SYNC_TIMEOUT", default=10.0)

# MultiFernet keys (comma separated, newest first) for carrier and gateway
# credentials stored per tenant. Derived from SECRET_KEY when unset in DEBUG.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

INSTALLED_APPS = [
    "returns_portal.tenancy.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "simple_history",
    "returns_portal.tenancy",
    "returns_portal",
    "rma",
    "tracking",
    "refunds",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "returns_portal.tenancy.middleware.TenantHostMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "returns_portal.urls"
WSGI_APPLICATION = "returns_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "returns_portal.tenancy.context_processors.tenant",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "db.sqlite3")}
    }

_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # Writers take the lock when the transaction starts instead of
            # failing with "database is locked" on upgrade (Django 5.1+).
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
        }
    )
    SQLITE_DB_FILE: Path | None = (
        Path(_db["NAME"]).resolve() if _db["NAME"] != ":memory:" else DATA_DIR / "memory"
    )
else:
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    _db.setdefault("CONN_HEALTH_CHECKS", True)
    SQLITE_DB_FILE = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker (chosen independently of the database) --------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": 300,
            "KEY_PREFIX": "rp",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
    BROKER_FOLDER = None
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "rp_cache",
            "TIMEOUT": 300,
        }
    }
    # Derived from the database file, so a new database never sees messages
    # queued for an old one (DESIGN.md section 1).
    _db_file = SQLITE_DB_FILE or DATA_DIR / "db"
    BROKER_FOLDER = Path(f"{_db_file}.broker").resolve()
    for _sub in ("queue", "processed"):
        (BROKER_FOLDER / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "store_processed": False,
    }

# --- Celery (STYLE.md "Background work") ----------------------------------
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300  # below the broker's visibility timeout (3600 s)
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# The schedule is code; every job takes a JobLease so a second beat or a
# double fire does nothing (returns_portal/tasks.py).
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "returns_portal.outbox_sweep", "schedule": timedelta(minutes=1)},
    "detect-exceptions": {
        "task": "returns_portal.detect_exceptions",
        "schedule": timedelta(minutes=5),
    },
    "poll-carriers": {"task": "tracking.poll_due", "schedule": timedelta(minutes=1)},
    "retention-prune": {"task": "returns_portal.retention_prune", "schedule": timedelta(hours=1)},
}
OUTBOX_SWEEP_AFTER = timedelta(minutes=2)
# Retention (returns_portal/retention.py): an Idempotency-Key is remembered this long
# (Stripe's 24 h); processed and rejected raw payloads are deleted after this many
# days (0 keeps them forever). Payloads still waiting for an unmatched number are kept.
IDEMPOTENCY_KEY_TTL = timedelta(hours=env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24))
RAW_PAYLOAD_RETENTION_DAYS = env.int("RAW_PAYLOAD_RETENTION_DAYS", default=90)

# --- E-mail ---------------------------------------------------------------
# django-environ drops the first "/" of the URL's path: an absolute directory needs
# four slashes (`filemail:////abs/dir`), else mail lands in `<cwd>/abs/dir`.
EMAIL_URL = env.str(
    "EMAIL_URL",
    default="filemail:///" + str(DATA_DIR / "mail") if DEBUG else "consolemail://",
)
vars().update(env.email_url_config(EMAIL_URL))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"returns@{BASE_DOMAIN}")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Auth, i18n, static ---------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# The portal's language selector (set_language) remembers the choice in this cookie,
# per host; the browser's Accept-Language decides until then.
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without `collectstatic` (make demo, tests) WhiteNoise serves from the finders.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

# --- Security (manage.py check --deploy is clean with DEBUG off) ----------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PUBLIC_SCHEME == "https")
    SESSION_COOKIE_SECURE = PUBLIC_SCHEME == "https"
    CSRF_COOKIE_SECURE = PUBLIC_SCHEME == "https"
    LANGUAGE_COOKIE_SECURE = PUBLIC_SCHEME == "https"
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_COUNT else None
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[f"{PUBLIC_SCHEME}://*.{BASE_DOMAIN}" + (f":{PUBLIC_PORT}" if PUBLIC_PORT else "")],
)

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["returns_portal.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["returns_portal.api.auth.HasTenantApiKey"],
    "DEFAULT_PARSER_CLASSES": [
        "returns_portal.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "returns_portal.api.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "returns_portal.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "returns-portal API",
    "DESCRIPTION": "Orders, returns (RMAs), shipments and tracking events for one tenant. "
    "Authenticate with `Authorization: Api-Key <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}
