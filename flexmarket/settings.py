"""flexmarket settings: one module, configured from the environment (twelve-factor).

Unset variables give a development setup that needs nothing installed: SQLite, an embedded
Celery broker on the filesystem, console email. Production sets DEBUG=0, SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL and REDIS_URL; `manage.py check --deploy` is then clean.
"""

import importlib.util
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://localhost:8000")
VAR_DIR = Path(os.environ.get("FLEXMARKET_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "guardian",
    "django_celery_beat",
    "django_celery_results",
    "bulma",
    "csp",
    "flexmarket",
    "django_tables2",
    "accounts",
    "grid",
    "trading",
    "settlement",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "flexmarket.middleware.UploadSizeLimitMiddleware",
    "csp.middleware.CSPMiddleware",
    "flexmarket.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.RequestIdMiddleware",
    "accounts.middleware.OrganisationMiddleware",
    "accounts.middleware.FmoMfaRequiredMiddleware",
    "flexmarket.middleware.LocalTimeMiddleware",
    "flexmarket.middleware.BrokerUnavailableMiddleware",
]

ROOT_URLCONF = "flexmarket.urls"
WSGI_APPLICATION = "flexmarket.wsgi.application"
ASGI_APPLICATION = "flexmarket.asgi.application"

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
                "accounts.context_processors.organisation",
                "flexmarket.context_processors.time_zone",
            ],
            "builtins": ["flexmarket.templatetags.units"],
        },
    },
]


def database_from_env(environ=os.environ) -> dict:
    """DATABASE_URL (default: an SQLite file) with persistent connections for PostgreSQL.

    A server database keeps each worker's connection open for DB_CONN_MAX_AGE seconds (default 600) instead of
    connecting anew on every request, and checks it with DB_CONN_HEALTH_CHECKS (default on) before reusing it
    after a request, so a connection the server dropped is replaced rather than failing one request.
    SQLite opens a local file, which costs nothing, so it defaults to 0 (close after each request).
    """
    config = dj_database_url.parse(environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))
    default_age = "0" if config["ENGINE"] == "django.db.backends.sqlite3" else "600"
    config["CONN_MAX_AGE"] = int(environ.get("DB_CONN_MAX_AGE", default_age))
    health_checks = environ.get("DB_CONN_HEALTH_CHECKS")
    config["CONN_HEALTH_CHECKS"] = (
        True if health_checks is None else health_checks.strip().lower() in {"1", "true", "yes", "on"}
    )
    return config


# Database: DATABASE_URL, or an SQLite file so a newcomer needs nothing installed.
DATABASES = {"default": database_from_env()}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not memory) for the test database, so a real Celery worker process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery's broker and Django's cache when REDIS_URL is set.
REDIS_URL = os.environ.get("REDIS_URL", "")
# The default cache holds only throttling counters: while Redis is down it acts as an empty cache
# (flexmarket.cache). The "imports" cache carries the progress of background imports from the worker to the web
# process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "flexmarket.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        },
        "imports": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "imports",
        },
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "imports": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache" / "imports"),
        },
    }

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: email login, organisation application at sign-up, TOTP MFA.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.OrganisationSignupForm"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[flexmarket] "
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Sign-in throttling (accounts/login_throttle.py, docs/operations.md): per client IP and per account, with
# back-off; a browser that signed in to the account before is trusted and counts only its own failures.
LOGIN_THROTTLE = {
    "client": {"free": 10, "base": 1.0, "cap": 900.0, "forget_after": 24 * 3600.0},
    "account": {"free": 5, "base": 2.0, "cap": 900.0, "forget_after": 24 * 3600.0},
    "device": {"free": 5, "base": 1.0, "cap": 300.0, "forget_after": 3600.0},
}
LOGIN_THROTTLE_DEVICE_COOKIE = "fm_device"
LOGIN_THROTTLE_DEVICE_COOKIE_AGE = 365 * 24 * 3600
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "flexmarket"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "flexmarket <noreply@flexmarket.local>")

# django-guardian: per-object grants (e.g. a DSO allowed to see an ESP's baseline).
ANONYMOUS_USER_NAME = None
GUARDIAN_GET_INIT_ANONYMOUS_USER = None

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Third-party assets come from installed packages, never a CDN: Bulma (django-bulma app),
# Leaflet + Leaflet.draw (django-leaflet's files; its app is not installed because its admin
# widgets need GDAL), Plotly's bundled JS, Swagger UI (drf-spectacular-sidecar app).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    Path(importlib.util.find_spec("leaflet").origin).parent / "static",
    ("plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "flexmarket.staticstorage.StaticStorage"},
}
# Hashed static URLs (cached for a year) also in DEBUG once collectstatic has run: the demo sets this for its server.
FLEXMARKET_STATIC_HASHED_URLS = env_bool("FLEXMARKET_STATIC_HASHED_URLS", not DEBUG)
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# REST API (FLEXGRID API-TRQT_01..05).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsApprovedMember"],
    # JSON bodies only (file uploads declare MultiPartParser on their action): DRF reads an empty form field
    # as "not given", so form bodies would bypass documented constraints such as minLength.
    # JSON only (bounded nesting); file uploads take multipart on their own import actions.
    "DEFAULT_PARSER_CLASSES": ["flexmarket.api.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "flexmarket.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "flexmarket.api.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "flexmarket.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "flexmarket.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "60/minute"),
        "user": os.environ.get("API_THROTTLE_USER", "6000/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "flexmarket API",
    "DESCRIPTION": "Local flexibility market: grid locations, assets, requests, offers, contracts, "
    "meter data and settlement. Authenticate with `Authorization: Api-Key <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStateEnum": "trading.models.OrderState",
        "SessionStateEnum": "trading.models.MarketSession.State",
        "ContractStateEnum": "trading.models.Contract.State",
        "PowerFlowRunStateEnum": "grid.models.PowerFlowRun.State",
        "OrganisationStatusEnum": "accounts.models.Organisation.Status",
        "ZoneStatusEnum": "grid.models.GridLocation.Status",
        "PrequalificationCheckItemEnum": "grid.models.PrequalificationCheck.Item",
    },
    # The schema is validated by tests/test_openapi.py rather than by `check --deploy`.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

# Celery: Redis when REDIS_URL is set; otherwise kombu's filesystem transport, so a real
# worker and beat still run with no server installed.
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
if not REDIS_URL:
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "django-cache"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Reliability: leased runs and Celery delivery (flexmarket/runs.py; docs/operations.md, "Runs") -------
# A claimed run holds a lease. A running run whose lease has expired lost its worker: the next delivery of its
# message or the sweep (beat, every minute) takes it over, and fails it visibly after the last attempt.
FLEXMARKET_RUN_LEASE_SECONDS = int(os.environ.get("FLEXMARKET_RUN_LEASE_SECONDS", "900"))
FLEXMARKET_RUN_MAX_ATTEMPTS = int(os.environ.get("FLEXMARKET_RUN_MAX_ATTEMPTS", "3"))
# Contracts verified per batch (one read of their readings, one write of their results): bounds a worker's memory
# (~30 MiB of readings per 1,000 single-asset contracts) and the length of its lease.
FLEXMARKET_VERIFICATION_BATCH_CONTRACTS = int(
    os.environ.get("FLEXMARKET_VERIFICATION_BATCH_CONTRACTS", "2000")
)
# Idempotent tasks are acknowledged late (flexmarket.runs.LeasedRunTask); with this, a message whose worker
# process dies mid-task (SIGKILL, OOM) is requeued instead of acknowledged. It only affects acks_late tasks.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# With late acknowledgement a worker process reserves one message beyond the one it runs, not four.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
if REDIS_URL:
    # Redis hands an unacknowledged message to another worker after visibility_timeout (the whole worker died).
    # It must exceed the lease plus a retry's countdown, or a live run's message is delivered twice (harmless:
    # the claim refuses it, but wasteful); twice the lease keeps that margin.
    _visibility_timeout = int(
        os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(2 * FLEXMARKET_RUN_LEASE_SECONDS))
    )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility_timeout,
        # How often workers look for such messages; kombu's default scans only every 100 s.
        "unacked_restore_interval": max(1, min(10, _visibility_timeout // 10)),
        "unacked_restore_throttle": 1,
    }
# --- end of reliability settings ----------------------------------------------------------------------------

# Maps: tiles come from a configurable server. MAP_TILE_URL="" is the offline mode (tests use it): maps draw the
# light base shipped in static/geo/base-map.geojson instead, as they also do when the first tiles fail to load.
MAP_TILE_URL = os.environ.get("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = os.environ.get("MAP_TILE_ATTRIBUTION", "&copy; OpenStreetMap contributors")
MAP_DEFAULT_CENTER = (53.43, 11.815)  # lat, lon: the demo grid (SimBench MV semi-urban, Mecklenburg DE)
MAP_DEFAULT_ZOOM = 12

# Security: on whenever DEBUG is off (HTTPS-only cookies, HSTS, redirects).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True


# Content-Security-Policy (django-csp): scripts only from our own origin (no inline scripts anywhere);
# inline styles are allowed because Plotly, Leaflet and Swagger UI set element styles. Map tiles may come
# from MAP_TILE_URL's origin. Permissions-Policy turns off browser features no page uses.
def _tile_origin(url: str) -> list[str]:
    if not url.startswith(("http://", "https://")):
        return []
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].replace("{s}", "*")
    return [f"{scheme}://{host}"]


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *_tile_origin(MAP_TILE_URL)],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

# One handler (the root's): Django's own "django" logger handlers are removed so that DEBUG does not print
# every django.request record twice. Every record carries the request id (flexmarket.log).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "flexmarket.log.RequestIdFilter"}},
    "formatters": {
        "default": {"format": "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "default"}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # pandapower announces at INFO which optional plotting back-ends it could not import; not ours to show.
        "pandapower": {"level": "WARNING"},
    },
}

# Clearing runs hold a lease of the product's solver time limit plus this margin (seconds) for loading and
# writing; a run whose lease expires is failed by the sweep and its session queued again (docs/operations.md).
CLEARING_LEASE_MARGIN_SECONDS = int(os.environ.get("CLEARING_LEASE_MARGIN_SECONDS", "300"))

# Market defaults the FMO can override per market/product in the admin.
FLEXMARKET_PLATFORM_FEE_EUR_PER_MWH = os.environ.get("FLEXMARKET_PLATFORM_FEE_EUR_PER_MWH", "0.50")

# Input limits (docs/operations.md, "Input limits"): no participant and no file can exhaust the platform.
FLEXMARKET_UPLOAD_MAX_BYTES = int(os.environ.get("FLEXMARKET_UPLOAD_MAX_BYTES", str(50 * 1024 * 1024)))
FLEXMARKET_IMPORT_MAX_ROWS = int(os.environ.get("FLEXMARKET_IMPORT_MAX_ROWS", "20000"))
FLEXMARKET_METER_IMPORT_MAX_ROWS = int(os.environ.get("FLEXMARKET_METER_IMPORT_MAX_ROWS", "2000000"))
FLEXMARKET_IMPORT_INLINE_MAX_BYTES = int(os.environ.get("FLEXMARKET_IMPORT_INLINE_MAX_BYTES", "262144"))
FLEXMARKET_IMPORT_ERRORS_LISTED = int(os.environ.get("FLEXMARKET_IMPORT_ERRORS_LISTED", "100"))
FLEXMARKET_CSV_MAX_FIELD_CHARS = int(os.environ.get("FLEXMARKET_CSV_MAX_FIELD_CHARS", "10000"))
FLEXMARKET_CSV_MAX_LINE_BYTES = int(os.environ.get("FLEXMARKET_CSV_MAX_LINE_BYTES", "1048576"))
FLEXMARKET_JSON_MAX_DEPTH = int(os.environ.get("FLEXMARKET_JSON_MAX_DEPTH", "64"))
FLEXMARKET_ZONE_MAX_VERTICES = int(os.environ.get("FLEXMARKET_ZONE_MAX_VERTICES", "10000"))
FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES = int(os.environ.get("FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES", "500"))
FLEXMARKET_AVAILABILITY_MAX_CHARS = int(os.environ.get("FLEXMARKET_AVAILABILITY_MAX_CHARS", "500"))
FLEXMARKET_AVAILABILITY_MAX_WINDOWS = int(os.environ.get("FLEXMARKET_AVAILABILITY_MAX_WINDOWS", "28"))
FLEXMARKET_ASSET_MAX_KW = os.environ.get("FLEXMARKET_ASSET_MAX_KW", "1000000")
FLEXMARKET_ORDER_MAX_KW = os.environ.get("FLEXMARKET_ORDER_MAX_KW", "100000")
FLEXMARKET_REQUEST_MAX_KW_PER_ZONE_PTU = os.environ.get("FLEXMARKET_REQUEST_MAX_KW_PER_ZONE_PTU", "200000")
FLEXMARKET_ORDER_MAX_PRICE = os.environ.get("FLEXMARKET_ORDER_MAX_PRICE", "100000")
FLEXMARKET_EARLIEST_DATE = os.environ.get("FLEXMARKET_EARLIEST_DATE", "2000-01-01")
FLEXMARKET_LATEST_DATE = os.environ.get("FLEXMARKET_LATEST_DATE", "2100-12-31")
FLEXMARKET_METER_FILE_MAX_SPAN_DAYS = int(os.environ.get("FLEXMARKET_METER_FILE_MAX_SPAN_DAYS", "400"))
# A bulk POST of more readings than this becomes a background import job (202 with the job to watch).
FLEXMARKET_METER_API_INLINE_MAX_READINGS = int(
    os.environ.get("FLEXMARKET_METER_API_INLINE_MAX_READINGS", "2000")
)

# Settlement (docs/settlement.md). Meter readings are accepted from this many days before the asset was registered
# up to the end of the last PTU that has passed; statements carry this currency and VAT rate on their net total.
METER_READINGS_DAYS_BEFORE_ASSET = int(os.environ.get("METER_READINGS_DAYS_BEFORE_ASSET", "400"))
SETTLEMENT_CURRENCY = os.environ.get("SETTLEMENT_CURRENCY", "EUR")
SETTLEMENT_VAT_RATE = os.environ.get("SETTLEMENT_VAT_RATE", "0.21")

# Congestion forecasts (grid/timeseries.py): the local time zone whose delivery days a forecast covers, and the
# function that reads the D-prognoses of assets for a day (project glue in flexmarket/prognoses.py, so that grid
# does not import settlement, which sits above it).
FLEXMARKET_GRID_TIME_ZONE = os.environ.get("FLEXMARKET_GRID_TIME_ZONE", "Europe/Amsterdam")
# Pages and forms show times in this zone (the API and storage stay in UTC): flexmarket/localtime.py.
FLEXMARKET_DISPLAY_TIME_ZONE = os.environ.get("FLEXMARKET_DISPLAY_TIME_ZONE", FLEXMARKET_GRID_TIME_ZONE)
FLEXMARKET_FORECAST_PROGNOSES = "flexmarket.prognoses.asset_prognoses"
