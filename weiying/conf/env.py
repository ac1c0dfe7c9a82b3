"""Strict readers of the environment: a bad value stops start-up with a sentence that says
which variable is wrong and why."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A setting read from the environment is unusable."""


def text(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def boolean(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a yes/no value; use 1/0, true/false, yes/no or on/off.")


def integer(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum of {minimum}.")
    return value


def csv(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def database_url(name: str, default: str) -> str:
    value = text(name, default)
    scheme = urlparse(value).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigError(
            f"{name} must start with sqlite:/// or postgres://; got the scheme {scheme!r}. "
            "Example: postgres://postgres@127.0.0.1:5432/weiying"
        )
    return value


def redis_url(name: str) -> str:
    value = text(name, "")
    if value and urlparse(value).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"{name} must start with redis:// (or rediss://); got {value!r}.")
    return value


def time_zone(name: str, default: str) -> str:
    value = text(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a known time zone, e.g. Asia/Shanghai.") from None
    return value


def choice(name: str, default: str, allowed: set[str]) -> str:
    value = text(name, default)
    if value not in allowed:
        options = ", ".join(sorted(allowed))
        raise ConfigError(f"{name}={value!r} is not one of: {options}.")
    return value


def directory(name: str, default: Path) -> Path:
    path = Path(text(name, str(default))).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name}={path} exists but is not a folder.")
    return path


def url(name: str, default: str) -> str:
    """An http(s) base URL without a trailing slash."""
    value = text(name, default).rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ConfigError(f"{name}={value!r} is not an http:// or https:// URL.")
    return value


def secret(name: str) -> str:
    """A secret from NAME, or from the file NAME_FILE points at (a mounted secret)."""
    value = os.environ.get(name, "").strip()
    path = os.environ.get(f"{name}_FILE", "").strip()
    if value and path:
        raise ConfigError(f"{name} and {name}_FILE are both set; keep one.")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path} cannot be read: {exc.strerror}.") from None
    return value
