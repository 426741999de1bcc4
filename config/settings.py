"""Persona Studio settings, read from the environment (twelve-factor).

Every value has a default that needs no server: SQLite under var/, media under
var/media/, and kombu's filesystem transport under var/broker/ as the Celery
broker. Setting DATABASE_URL, CELERY_BROKER_URL and REDIS_URL moves the
project onto PostgreSQL and Redis. DJANGO_ENV=production turns DEBUG off,
requires a real SECRET_KEY and switches on the HTTPS hardening that
`manage.py check --deploy` asks for.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DEBUG", default=not PRODUCTION)


def _secret_key_problem(key):
    """What makes `key` unfit for production, or None. The bar is Django's own
    deploy check (security.W009): 50 characters, 5 distinct, not generated
    for development."""
    if not key:
        return "is not set; production needs its own key"
    if key.startswith("django-insecure-"):
        return "is a development key (django-insecure-…)"
    if len(key) < 50:
        return "is too short (under 50 characters)"
    if len(set(key)) < 5:
        return "has too little variety (under 5 distinct characters)"
    return None


if PRODUCTION:
    # No fallback and no weak key: a production process without its own
    # secret must not start. It says why in one line, not a traceback, from
    # every entry point: SystemExit passes through Django's, gunicorn's and
    # celery's error handling (ImproperlyConfigured would be printed with its
    # traceback), and on status 3 ("worker failed to boot") gunicorn's master
    # stops instead of respawning workers for ever.
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if problem := _secret_key_problem(SECRET_KEY):
        sys.stderr.write(
            f"SECRET_KEY {problem}. Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
        )
        raise SystemExit(3)
else:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-local-development-only")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "audit",
    "brands",
    "generation",
    "avatars",
    "content",
    "campaigns",
    "approvals",
    "webhooks",
    "publishing",
    "api",
    "dashboard",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    # htmx served from the package (its {% htmx_script %}), request.htmx for partial answers.
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.middleware.MethodNotAllowedPageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its answer.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # Serves collected static files from the app server; in development
    # runserver serves them itself.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file on the embedded defaults:
    # WAL lets readers run beside the writer, IMMEDIATE transactions take the
    # write lock up front instead of failing with "database is locked" when a
    # reader tries to upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes): 5 failed sign-ins for one username from
# one address lock that pair out for 15 minutes, even with the right password;
# the same user elsewhere and other users at that address are not affected.
# A success resets the count. Attempts are counted in the database.
AUTHENTICATION_BACKENDS = [
    "config.security.LoginThrottleBackend",  # first: refuses locked-out pairs
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.security.login_locked_out"  # the login form, with why, as 429
AXES_VERBOSE = False  # no banner from every process; failures are still logged
# Behind reverse proxies REMOTE_ADDR is the nearest proxy's: the client's address
# is the one the outermost of PROXY_COUNT trusted proxies appended to
# X-Forwarded-For (entries left of it are whatever the client sent).
PROXY_COUNT = env.int("PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "config.security.client_address"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Media is never served from a public URL: assets belong to one brand each and
# are streamed by a brand-scoped view (content.views).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Assets in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...) through
# django-storages when a bucket is named; the files stay private (signed URLs are
# never handed out: the brand-scoped views stream them).
if env.str("AWS_STORAGE_BUCKET_NAME", default=""):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("AWS_LOCATION", default=""),
            "default_acl": "private",
            "querystring_auth": True,
            # Our names are unique per job and attempt; never silently overwrite another file.
            "file_overwrite": False,
        },
    }

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Generation -------------------------------------------------------------

# Checkpoint directories of GeneratorModel rows are resolved against this
# folder when they are relative.
MODELS_ROOT = Path(env.str("MODELS_ROOT", default=str(VAR_DIR / "models")))
# How many generators one process keeps loaded (each holds its weights in
# memory, on the GPU for a GPU worker).
MODEL_CACHE_SIZE = env.int("MODEL_CACHE_SIZE", default=2)
# Identity measures a brand plugs in for a model, by model slug: the dotted path of a
# class with `embed(uint8 [N, H, W, C]) -> unit vectors [N, D]` and a `calibration`
# (generation.stylegan.identity.IdentityMeasure), e.g. a face embedding for a
# photographic model. Other models use the embedding they ship under identity/, or the
# pixel fallback.
IDENTITY_MEASURES = {}
# "auto" renders on CUDA when the worker has it, else on the CPU.
GENERATION_DEVICE = env.str("GENERATION_DEVICE", default="auto")
GENERATION_MAX_ATTEMPTS = env.int("GENERATION_MAX_ATTEMPTS", default=3)
# Images a worker renders in one forward pass, per device kind.
GENERATION_BATCH_SIZE = {
    "cpu": env.int("GENERATION_BATCH_SIZE_CPU", default=8),
    "cuda": env.int("GENERATION_BATCH_SIZE_CUDA", default=32),
}
# Threads a worker makes each batch's files with (format, derivatives, C2PA signing).
GENERATION_ENCODE_THREADS = env.int("GENERATION_ENCODE_THREADS", default=os.cpu_count() or 1)

# --- Celery -----------------------------------------------------------------

# kombu's filesystem transport ignores the host; naming one keeps kombu from
# warning about its absence in every process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
BROKER_DIR = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# A running job's claim is trusted for this long. Past the hard time limit the
# attempt is certainly dead (Celery kills it), so its job may be reclaimed.
GENERATION_LEASE_SECONDS = CELERY_TASK_TIME_LIMIT + 60

if CELERY_BROKER_URL.startswith("filesystem:"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    # Redis redelivers a message nobody acknowledged within the visibility
    # timeout. It must exceed the longest task (the hard limit), or a job
    # still rendering would be handed to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # A web request that queues a job must not hang on a broker that is
        # down: the job waits in the database (the outbox) and beat sends it later.
        "socket_connect_timeout": 1,
        # A broker that accepts but never answers: kombu's blocking reads wait
        # 1 s (brpop_timeout), so 2 s is the least that keeps workers healthy.
        "socket_timeout": 2,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 1
if CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", float("inf")) <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT")

# Results live in the database (GenerationJob); a result backend is only set
# where something reads Celery results directly.
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
# "gpu": renders, for workers with the GPU; "default": everything else.
CELERY_TASK_QUEUES = (Queue("gpu"), Queue("default"))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"generation.render_job": {"queue": "gpu"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Beat's record of when each periodic task last ran, wherever beat is started.
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
CELERY_BEAT_SCHEDULE = {
    "generation-expire-leases": {
        "task": "generation.expire_leases",
        "schedule": 60.0,
        # Sweeps missed while no worker serves "default" are dropped, not piled up.
        "options": {"expires": 60},
    },
    "generation-dispatch-pending": {
        "task": "generation.dispatch_pending",
        "schedule": 15.0,
        "options": {"expires": 15},
    },
    "generation-directions-sweep": {
        "task": "generation.directions_sweep",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    "api-idempotency-expire": {
        "task": "api.idempotency_expire",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "approvals-release-sweep": {
        "task": "approvals.release_sweep",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    # Webhook deliveries whose retry is due, or whose attempt's worker was lost.
    "webhooks-deliver-due": {
        "task": "webhooks.deliver_due",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
}

# Email (invitations, review notifications): printed to the console unless an SMTP
# server is named.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Persona Studio <noreply@localhost>")
# Where links in emails point: the address people open the dashboard at.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

# The agency API (api/): tokens or the dashboard's session, problem details for every
# error, cursor pagination, per-token throttling in the shared cache.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "api.permissions.TokenScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.NewestFirstCursor",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.CallerRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"caller": env.str("API_RATE_LIMIT", default="600/min")},
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Persona Studio API",
    "DESCRIPTION": "Brands' personas, campaigns, assets and approvals, for agencies and brands.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.problem_responses",
    ],
    # Operations are grouped by what follows the brand: personas, campaigns, assets, ...
    "SCHEMA_PATH_PREFIX": r"/api/v1(/brands/\{brand_slug\})?",
    "ENUM_NAME_OVERRIDES": {
        "ReviewStateEnum": "approvals.models.ReviewState",
        "LibraryItemKindEnum": "avatars.models.LibraryItem.Kind",
        "DirectionKindEnum": "generation.models.Direction.Kind",
        "PostStateEnum": "publishing.models.Post.State",
    },
}
# Idempotency-Key records are kept this long (seconds).
API_IDEMPOTENCY_TTL = 24 * 3600

# Webhooks (webhooks/; defaults and their meaning in webhooks/conf.py). Endpoints on
# private, loopback or link-local addresses are refused unless allowed here (tests).
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
WEBHOOKS_MAX_ATTEMPTS = env.int("WEBHOOKS_MAX_ATTEMPTS", default=8)
WEBHOOKS_RETRY_BASE_SECONDS = env.float("WEBHOOKS_RETRY_BASE_SECONDS", default=30)
WEBHOOKS_RETRY_MAX_SECONDS = env.float("WEBHOOKS_RETRY_MAX_SECONDS", default=6 * 3600)
WEBHOOKS_DISABLE_AFTER_FAILURES = env.int("WEBHOOKS_DISABLE_AFTER_FAILURES", default=20)
WEBHOOKS_DISABLE_AFTER_SECONDS = env.int("WEBHOOKS_DISABLE_AFTER_SECONDS", default=24 * 3600)

# Publishing (publishing/; defaults and their meaning in publishing/conf.py).
# PUBLISHING_CLOCK_FILE: tests move every process's clock with it (publishing/clock.py); unset in production.
PUBLISHING_CLOCK_FILE = env.str("PUBLISHING_CLOCK_FILE", default="")
PUBLISHING_TICK_SECONDS = env.float("PUBLISHING_TICK_SECONDS", default=60.0)
PUBLISHING_MISSED_GRACE_SECONDS = env.int("PUBLISHING_MISSED_GRACE_SECONDS", default=180)
PUBLISHING_LAPSE_AFTER_SECONDS = env.int("PUBLISHING_LAPSE_AFTER_SECONDS", default=3600)
PUBLISHING_MAX_ATTEMPTS = env.int("PUBLISHING_MAX_ATTEMPTS", default=6)
PUBLISHING_RETRY_BASE_SECONDS = env.float("PUBLISHING_RETRY_BASE_SECONDS", default=30)
PUBLISHING_RETRY_MAX_SECONDS = env.float("PUBLISHING_RETRY_MAX_SECONDS", default=1800)
PUBLISHING_EXPORT_STORAGE = env.str("PUBLISHING_EXPORT_STORAGE", default="default")
# Schedules' due runs, posts due to publish and approvals to lapse: one tick.
CELERY_BEAT_SCHEDULE["publishing-tick"] = {
    "task": "publishing.tick",
    "schedule": PUBLISHING_TICK_SECONDS,
    "options": {"expires": PUBLISHING_TICK_SECONDS},
}
