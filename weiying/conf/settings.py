"""Weiying settings: one module, every value read from the environment (see .env.example)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from weiying.conf import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env.directory("WEIYING_DATA_DIR", Path.cwd() / "data")

DEBUG = env.boolean("DEBUG", False)
SECRET_KEY = env.text("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env.boolean("WEIYING_REQUIRE_SECRET_KEY", False):
        raise env.ConfigError("SECRET_KEY is empty; set it to a long random string.")
    # Development and the demo: a fixed key is fine; production sets WEIYING_REQUIRE_SECRET_KEY=1.
    SECRET_KEY = "weiying-insecure-development-key-change-me-0123456789abcdef"
ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.csv("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "huey.contrib.djhuey",
    "weiying.core",
    "weiying.org",
    "weiying.catalog",
    "weiying.customers",
    "weiying.pipeline",
    "weiying.finance",
    "weiying.performance",
    "weiying.reports",
    "weiying.api",
    "weiying.web",
    "weiying.wechat",
    "weiying.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "weiying.core.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "weiying.conf.urls"
WSGI_APPLICATION = "weiying.conf.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "weiying.web.context.navigation",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
_default_sqlite = f"sqlite:///{DATA_DIR / 'weiying.sqlite3'}"
DATABASE_URL = env.database_url("DATABASE_URL", _default_sqlite)
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env.integer("DB_CONN_MAX_AGE", 60))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # WAL lets readers and the writer work at once; IMMEDIATE takes the write lock at the
        # start of a transaction so two writers queue on the busy timeout instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env.integer("SQLITE_BUSY_TIMEOUT", 30, minimum=1),
    }
    if _db["NAME"] not in {":memory:", ""}:
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif _db["ENGINE"].startswith("django.db.backends.postgresql"):
    # No JIT compilation for our queries: they are short, and compiling a plan PostgreSQL
    # thought costly took 0.1 s of a 0.6 s dashboard query on the xl company. A DATABASE_URL
    # that sets ?options=… keeps its own.
    _db.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DATABASES = {"default": _db}
IS_POSTGRES = _db["ENGINE"].startswith("django.db.backends.postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Queue and cache ------------------------------------------------------------------------
REDIS_URL = env.redis_url("REDIS_URL")
TASKS_IMMEDIATE = env.boolean("WEIYING_TASKS_IMMEDIATE", False)
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": "weiying",
        "url": REDIS_URL,
        "immediate": TASKS_IMMEDIATE,
        "utc": False,  # crontabs read in TIME_ZONE (Asia/Shanghai), not UTC
        "consumer": {"workers": 2, "worker_type": "thread"},
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "weiying",
        "filename": str(DATA_DIR / "queue.sqlite3"),
        "immediate": TASKS_IMMEDIATE,
        "utc": False,  # crontabs read in TIME_ZONE (Asia/Shanghai), not UTC
        "consumer": {"workers": 2, "worker_type": "thread"},
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.boolean("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Language and time ----------------------------------------------------------------------
LANGUAGE_CODE = env.choice("LANGUAGE_CODE", "zh-hans", {"zh-hans", "en"})
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.time_zone("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Business rules that a company tunes ----------------------------------------------------
WEIYING = {
    "POOL_DAILY_CLAIM_LIMIT": env.integer("POOL_DAILY_CLAIM_LIMIT", 20),
    "POOL_HOLDING_LIMIT": env.integer("POOL_HOLDING_LIMIT", 300),
    "POOL_RECLAIM_BAR_DAYS": env.integer("POOL_RECLAIM_BAR_DAYS", 30),
    "POOL_RECYCLE_NO_FOLLOWUP_DAYS": env.integer("POOL_RECYCLE_NO_FOLLOWUP_DAYS", 30, minimum=1),
    "POOL_RECYCLE_NO_OPPORTUNITY_DAYS": env.integer(
        "POOL_RECYCLE_NO_OPPORTUNITY_DAYS", 90, minimum=1
    ),
    "POOL_RECYCLE_WARNING_DAYS": env.integer("POOL_RECYCLE_WARNING_DAYS", 3),
    "DISCOUNT_APPROVAL_THRESHOLD": env.text("DISCOUNT_APPROVAL_THRESHOLD", "0.10"),
    # Days a customer's WeCom data is kept after the WeCom tie ends (PIPL retention clock).
    "WECHAT_RETENTION_DAYS": env.integer("WECHAT_RETENTION_DAYS", 180, minimum=1),
}

# --- Encryption at rest -----------------------------------------------------------------------
# Fernet keys for secrets and personal data in the database; the first encrypts, all decrypt.
WEIYING_FIELD_KEYS = env.csv("WEIYING_FIELD_KEY", [])

# --- WeChat ---------------------------------------------------------------------------------
# The address people reach this installation at: links in pushed WeCom cards are built on it.
WEIYING_BASE_URL = env.url("WEIYING_BASE_URL", "http://127.0.0.1:8000")
# Every Tencent host is a setting, so the same client talks to Tencent or to the sandbox
# (`weiying sandbox` serves all of them on one port). Credentials: see weiying/wechat/config.py.
WECHAT = {
    "WECOM_API": env.url("WECOM_API_BASE", "https://qyapi.weixin.qq.com"),
    "WECOM_OAUTH": env.url("WECOM_OAUTH_BASE", "https://open.weixin.qq.com"),
    "WECOM_QR_LOGIN": env.url("WECOM_QR_LOGIN_BASE", "https://login.work.weixin.qq.com"),
    "OA_API": env.url("OA_API_BASE", "https://api.weixin.qq.com"),
    "OA_QR": env.url("OA_QR_BASE", "https://mp.weixin.qq.com"),
    "PAY_API": env.url("PAY_API_BASE", "https://api.mch.weixin.qq.com"),
    "TIMEOUT": env.integer("WECHAT_TIMEOUT", 5, minimum=1),
    "CALLBACK_MAX_BYTES": env.integer("WECHAT_CALLBACK_MAX_BYTES", 64 * 1024, minimum=1024),
    "TIMESTAMP_WINDOW": env.integer("WECHAT_TIMESTAMP_WINDOW", 300, minimum=30),
    "INBOX_MAX_ATTEMPTS": env.integer("WECHAT_INBOX_MAX_ATTEMPTS", 8, minimum=1),
    "INBOX_LEASE_SECONDS": env.integer("WECHAT_INBOX_LEASE_SECONDS", 120, minimum=1),
    # WeCom drops app messages silently past 30 a minute / 1,000 an hour per member.
    "PUSH_PER_MINUTE": env.integer("WECHAT_PUSH_PER_MINUTE", 25, minimum=1),
    "PUSH_PER_HOUR": env.integer("WECHAT_PUSH_PER_HOUR", 900, minimum=1),
    "PUSH_MAX_ATTEMPTS": env.integer("WECHAT_PUSH_MAX_ATTEMPTS", 6, minimum=1),
    # The JS-SDK must come from Tencent inside WeCom (see weiying/wechat/jssdk.py); in sandbox
    # mode a local stand-in under static/vendor/wecom-jssdk/ is served instead.
    "JSSDK_URL": env.url("WECHAT_JSSDK_URL", "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"),
    "SANDBOX": env.boolean("WECHAT_SANDBOX", False),
}

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"})
LOG_JSON = env.boolean("LOG_JSON", not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "weiying.core.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_JSON else "plain"}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
