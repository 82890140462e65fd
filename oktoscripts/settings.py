"""Django settings: the one settings module, configured from the environment.

Every environment variable is read through oktoscripts/config.py (its table
VARIABLES; README "Configuration"). Every value has an
embedded default; tests use this same module.
"""

from __future__ import annotations

from datetime import timedelta

from oktoscripts import appset, config
from oktoscripts.accounts import config as sso
from oktoscripts.config import BASE_DIR

DATA_DIR = config.data_dir()
_embedded = config.embedded_endpoints(DATA_DIR)

SECRET_KEY = config.secret_key(DATA_DIR)
DEBUG = config.value("DEBUG")
ALLOWED_HOSTS = config.value("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = config.value("CSRF_TRUSTED_ORIGINS")

# Service URLs. Empty means "embedded": ``up`` starts the embedded server and
# hands its URL to its children; a process started by hand beside a running
# ``up`` finds the URLs it recorded under the data directory.
NATS_URL = config.value("NATS_URL") or _embedded.get("NATS_URL", "")
MONGO_URI = config.value("MONGO_URI") or _embedded.get("MONGO_URI", "")
MQTT_URL = config.value("MQTT_URL") or _embedded.get("MQTT_URL", "")
REDIS_URL = config.value("REDIS_URL")
MONGO_DB_NAME = config.value("OKTOSCRIPTS_MONGO_DB")
# How many NATS servers store each JetStream stream and bucket
# (oktoscripts/bus/streams.py): 3 on a 3-node cluster; JetStream allows 1 to 5.
STREAM_REPLICAS = config.value("OKTOSCRIPTS_STREAM_REPLICAS")
if not 1 <= STREAM_REPLICAS <= 5:
    raise config.ConfigError(
        "OKTOSCRIPTS_STREAM_REPLICAS", f"expected 1 to 5 servers, got {STREAM_REPLICAS}"
    )

# The USP controller (oktoscripts/usp): its Endpoint ID, its MQTT topic and
# protocol version ("auto": 5, else 3.1.1), the WebSocket MTP it serves, and
# agents it dials ("eid=ws://host:port/path,..."); README "Configuration".
USP_ENDPOINT_ID = config.value("OKTOSCRIPTS_USP_ENDPOINT_ID")
USP_MQTT_TOPIC = config.value("OKTOSCRIPTS_USP_MQTT_TOPIC")
USP_MQTT_VERSION = config.value("OKTOSCRIPTS_USP_MQTT_VERSION")
USP_MQTT_AGENT_TOPIC = config.value("OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC")
USP_MQTT_IDENTITY = config.value("OKTOSCRIPTS_USP_MQTT_IDENTITY").lower()
# The CA bundle an mqtts:// broker is checked with ("": the system's and the platform's CA).
MQTT_CA = config.value("OKTOSCRIPTS_MQTT_CA")
# The controller's client certificate and key, for a broker that asks for one.
MQTT_CERT = config.value("OKTOSCRIPTS_MQTT_CERT")
MQTT_KEY = config.value("OKTOSCRIPTS_MQTT_KEY")
# Set by ``up`` for the embedded broker: the controller answers its MQTT logins.
EMBEDDED_MQTT_AUTH = config.value("OKTOSCRIPTS_EMBEDDED_MQTT_AUTH") or _embedded.get(
    "OKTOSCRIPTS_EMBEDDED_MQTT_AUTH", ""
)
USP_WS_HOST = config.value("OKTOSCRIPTS_USP_WS_HOST")
USP_WS_PORT = config.value("OKTOSCRIPTS_USP_WS_PORT")
USP_WS_AUTH = config.value("OKTOSCRIPTS_USP_WS_AUTH").lower()
USP_WS_TLS = config.value("OKTOSCRIPTS_USP_WS_TLS")
USP_WS_DIAL = config.value("OKTOSCRIPTS_USP_WS_DIAL")
USP_TIMEOUT_S = float(config.value("OKTOSCRIPTS_USP_TIMEOUT"))
USP_MQTT_LEASE_S = float(config.value("OKTOSCRIPTS_USP_MQTT_LEASE"))

# Devices (oktoscripts/devices): the HTTP Digest realm of device credentials,
# and when a silent device counts as offline (CWMP: FACTOR x its periodic
# inform interval; TIMEOUT seconds when it has none).
DIGEST_REALM = config.value("OKTOSCRIPTS_DIGEST_REALM")
DEVICES_OFFLINE_FACTOR = config.value("OKTOSCRIPTS_OFFLINE_FACTOR")
DEVICES_OFFLINE_TIMEOUT = config.value("OKTOSCRIPTS_OFFLINE_TIMEOUT")

DATABASES = {
    "default": config.database_config(config.value("DATABASE_URL"), DATA_DIR / "db.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A worker loads these minus the apps only the web process uses (appset.py).
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
INSTALLED_APPS = appset.installed_apps(INSTALLED_APPS)

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
AXES_FAILURE_LIMIT = config.value("OKTOSCRIPTS_LOGIN_FAILURES")
AXES_COOLOFF_TIME = timedelta(seconds=config.value("OKTOSCRIPTS_LOGIN_LOCKOUT"))
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
HTTPS = config.value("OKTOSCRIPTS_HTTPS").lower()
if HTTPS not in ("off", "on", "proxy"):
    raise config.ConfigError("OKTOSCRIPTS_HTTPS", f"expected off, on or proxy, got {HTTPS!r}")
if HTTPS != "off":
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes of supervisors and `up` on the local port
    SECURE_HSTS_SECONDS = config.value("OKTOSCRIPTS_HSTS_SECONDS")
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
    "root": {"handlers": ["console"], "level": config.value("LOG_LEVEL")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts; not each sign-in's bookkeeping
    },
}
