"""Django settings: the one settings module, configured from the environment.

See README.md ("Configuration") for the table of variables. Every value has an
embedded default; tests use this same module.
"""

from __future__ import annotations

import os
from datetime import timedelta

from oktoscripts import config
from oktoscripts.accounts import config as sso
from oktoscripts.config import BASE_DIR

DATA_DIR = config.data_dir()
_embedded = config.embedded_endpoints(DATA_DIR)

SECRET_KEY = config.secret_key(DATA_DIR)
DEBUG = config.env_bool("DEBUG", False)
ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", [])

# Service URLs. Empty means "embedded": ``up`` starts the embedded server and
# hands its URL to its children; a process started by hand beside a running
# ``up`` finds the URLs it recorded under the data directory.
NATS_URL = config.service_url("NATS_URL", ("nats", "tls", "ws", "wss")) or _embedded.get(
    "NATS_URL", ""
)
MONGO_URI = config.service_url("MONGO_URI", ("mongodb", "mongodb+srv")) or _embedded.get(
    "MONGO_URI", ""
)
MQTT_URL = config.service_url("MQTT_URL", ("mqtt", "mqtts", "tcp")) or _embedded.get(
    "MQTT_URL", ""
)
REDIS_URL = config.service_url("REDIS_URL", ("redis", "rediss", "unix"))
MONGO_DB_NAME = os.environ.get("OKTOSCRIPTS_MONGO_DB", "oktoscripts")
# How many NATS servers store each JetStream stream and bucket
# (oktoscripts/bus/streams.py): 3 on a 3-node cluster; JetStream allows 1 to 5.
STREAM_REPLICAS = config.env_int("OKTOSCRIPTS_STREAM_REPLICAS", 1)
if not 1 <= STREAM_REPLICAS <= 5:
    raise config.ConfigError(
        "OKTOSCRIPTS_STREAM_REPLICAS", f"expected 1 to 5 servers, got {STREAM_REPLICAS}"
    )

# The USP controller (oktoscripts/usp): its Endpoint ID, its MQTT topic and
# protocol version ("auto": 5, else 3.1.1), the WebSocket MTP it serves, and
# agents it dials ("eid=ws://host:port/path,..."); README "Configuration".
USP_ENDPOINT_ID = os.environ.get("OKTOSCRIPTS_USP_ENDPOINT_ID", "").strip() or (
    "oui:000000:oktoscripts-controller"
)
USP_MQTT_TOPIC = os.environ.get("OKTOSCRIPTS_USP_MQTT_TOPIC", "").strip() or "usp/controller"
USP_MQTT_VERSION = os.environ.get("OKTOSCRIPTS_USP_MQTT_VERSION", "").strip() or "auto"
USP_MQTT_AGENT_TOPIC = (
    os.environ.get("OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC", "").strip() or "usp/agent"
)
USP_MQTT_IDENTITY = os.environ.get("OKTOSCRIPTS_USP_MQTT_IDENTITY", "").strip().lower() or "topic"
# The CA bundle an mqtts:// broker is checked with ("": the system's and the platform's CA).
MQTT_CA = os.environ.get("OKTOSCRIPTS_MQTT_CA", "").strip()
# The controller's client certificate and key, for a broker that asks for one.
MQTT_CERT = os.environ.get("OKTOSCRIPTS_MQTT_CERT", "").strip()
MQTT_KEY = os.environ.get("OKTOSCRIPTS_MQTT_KEY", "").strip()
# Set by ``up`` for the embedded broker: the controller answers its MQTT logins.
EMBEDDED_MQTT_AUTH = os.environ.get("OKTOSCRIPTS_EMBEDDED_MQTT_AUTH", "").strip() or (
    _embedded.get("OKTOSCRIPTS_EMBEDDED_MQTT_AUTH", "")
)
USP_WS_HOST = os.environ.get("OKTOSCRIPTS_USP_WS_HOST", "").strip() or "127.0.0.1"
USP_WS_PORT = config.env_int("OKTOSCRIPTS_USP_WS_PORT", 8081)
USP_WS_AUTH = os.environ.get("OKTOSCRIPTS_USP_WS_AUTH", "").strip().lower() or "on"
USP_WS_TLS = config.env_bool("OKTOSCRIPTS_USP_WS_TLS", True)
USP_WS_DIAL = config.env_list("OKTOSCRIPTS_USP_WS_DIAL", [])
USP_TIMEOUT_S = float(config.env_int("OKTOSCRIPTS_USP_TIMEOUT", 30))
USP_MQTT_LEASE_S = float(config.env_int("OKTOSCRIPTS_USP_MQTT_LEASE", 300))

# Devices (oktoscripts/devices): the HTTP Digest realm of device credentials,
# and when a silent device counts as offline (CWMP: FACTOR x its periodic
# inform interval; TIMEOUT seconds when it has none).
DIGEST_REALM = os.environ.get("OKTOSCRIPTS_DIGEST_REALM", "").strip() or "oktoscripts"
DEVICES_OFFLINE_FACTOR = config.env_int("OKTOSCRIPTS_OFFLINE_FACTOR", 3)
DEVICES_OFFLINE_TIMEOUT = config.env_int("OKTOSCRIPTS_OFFLINE_TIMEOUT", 3600)

DATABASES = {
    "default": config.database_config(
        os.environ.get("DATABASE_URL", "").strip(), DATA_DIR / "db.sqlite3"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_ace",
    "ninja",  # its Swagger UI template and static files for /api/docs (no CDN)
    "axes",
    "oktoscripts",
    "oktoscripts.runs",
    "oktoscripts.devices",
    "oktoscripts.scripts",
    "ide",
    "oktoscripts.automations",
    "oktoscripts.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ide.csp.content_security_policy",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "oktoscripts.urls"
ASGI_APPLICATION = "oktoscripts.asgi.application"
WSGI_APPLICATION = None

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
                "ide.context_processors.ide",
            ],
        },
    },
]

CHANNEL_LAYERS = config.channel_layers(REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

# Every password check goes through django-axes first (README "Security"): after
# OKTOSCRIPTS_LOGIN_FAILURES wrong passwords for one username, or from one
# address, sign-in is refused (429) for OKTOSCRIPTS_LOGIN_LOCKOUT seconds, and
# each further try meanwhile starts that time again. API tokens are not passwords.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = config.env_int("OKTOSCRIPTS_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(seconds=config.env_int("OKTOSCRIPTS_LOGIN_LOCKOUT", 900))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "lockout.html"
AXES_ENABLE_ADMIN = False
# Logged: each failure and each lockout (warnings naming the username and address
# tried; never the password, which django-axes always masks).
AXES_SENSITIVE_PARAMETERS = ["csrfmiddlewaretoken"]

# --- Single sign-on (README "Single sign-on"; oktoscripts/accounts) ----------
# OpenID Connect when OKTOSCRIPTS_OIDC_ISSUER is set, LDAP (on the sign-in
# form, after local accounts) when OKTOSCRIPTS_LDAP_URI is set. Local accounts
# always sign in too: the break-glass admin. Roles come from the provider's
# groups at every sign-in. Throttling counts LDAP passwords, never an OIDC
# callback (it checks no password).
SSO_OIDC = sso.oidc_from_env()
SSO_LDAP = sso.ldap_from_env()
AUTHENTICATION_BACKENDS += sso.backends(SSO_OIDC, SSO_LDAP)
AXES_WHITELIST_CALLABLE = "oktoscripts.accounts.signin.checks_no_password"
# --- end of single sign-on ---------------------------------------------------

# Served over HTTPS (README "Security"): "on" when the web process itself speaks
# TLS, "proxy" behind a proxy that terminates TLS and sets X-Forwarded-Proto.
# Either way cookies are Secure, plain HTTP is redirected and HSTS is sent.
HTTPS = os.environ.get("OKTOSCRIPTS_HTTPS", "").strip().lower() or "off"
if HTTPS not in ("off", "on", "proxy"):
    raise config.ConfigError("OKTOSCRIPTS_HTTPS", f"expected off, on or proxy, got {HTTPS!r}")
if HTTPS != "off":
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes of supervisors and `up` on the local port
    SECURE_HSTS_SECONDS = config.env_int("OKTOSCRIPTS_HSTS_SECONDS", 31_536_000)
if HTTPS == "proxy":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts; not each sign-in's bookkeeping
    },
}
