"""Django settings: the one settings module, configured from the environment.

See README.md ("Configuration") for the table of variables. Every value has an
embedded default; tests use this same module.
"""

from __future__ import annotations

import os

from oktoscripts import config
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
    "oktoscripts",
    "oktoscripts.runs",
    "ide",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            ],
        },
    },
]

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

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
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
