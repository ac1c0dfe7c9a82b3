"""The WeChat credentials in force: each value from the environment when set there (NAME, or
NAME_FILE for a mounted secret), else from the WeChatSettings row (secrets decrypted).

The result is cached per process for a minute and dropped when the settings row is saved
through `save_settings`. Secrets live in fields with repr=False, so a logged or printed
config shows none of them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from weiying.conf import env
from weiying.core import audit

# setting name -> (environment variable, WeChatSettings attribute, is a secret)
FIELDS: dict[str, tuple[str, str, bool]] = {
    "corp_id": ("WECOM_CORP_ID", "corp_id", False),
    "agent_id": ("WECOM_AGENT_ID", "agent_id", False),
    "app_secret": ("WECOM_APP_SECRET", "app_secret", True),
    "contact_secret": ("WECOM_CONTACT_SECRET", "contact_secret", True),
    "callback_token": ("WECOM_CALLBACK_TOKEN", "callback_token", True),
    "callback_aes_key": ("WECOM_CALLBACK_AES_KEY", "callback_aes_key", True),
    "oa_app_id": ("OA_APP_ID", "oa_app_id", False),
    "oa_secret": ("OA_APP_SECRET", "oa_secret", True),
    "oa_token": ("OA_TOKEN", "oa_token", True),
    "oa_aes_key": ("OA_AES_KEY", "oa_aes_key", True),
    "pay_mch_id": ("PAY_MCH_ID", "pay_mch_id", False),
    "pay_app_id": ("PAY_APP_ID", "pay_app_id", False),
    "pay_apiv3_key": ("PAY_APIV3_KEY", "pay_apiv3_key", True),
    "pay_private_key": ("PAY_PRIVATE_KEY", "pay_private_key", True),
    "pay_cert_serial": ("PAY_CERT_SERIAL", "pay_cert_serial", False),
    "pay_notify_url": ("PAY_NOTIFY_URL", "pay_notify_url", False),
}


@dataclass(frozen=True)
class WeChatConfig:
    corp_id: str = ""
    agent_id: str = ""
    app_secret: str = field(default="", repr=False)
    contact_secret: str = field(default="", repr=False)
    callback_token: str = field(default="", repr=False)
    callback_aes_key: str = field(default="", repr=False)
    oa_app_id: str = ""
    oa_secret: str = field(default="", repr=False)
    oa_token: str = field(default="", repr=False)
    oa_aes_key: str = field(default="", repr=False)
    pay_mch_id: str = ""
    pay_app_id: str = ""
    pay_apiv3_key: str = field(default="", repr=False)
    pay_private_key: str = field(default="", repr=False)
    pay_cert_serial: str = ""
    pay_notify_url: str = ""
    # serial -> PEM of the keys that verify Pay notifications (public data)
    pay_verify_keys: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def wecom_ready(self) -> bool:
        return bool(self.corp_id and self.app_secret)

    @property
    def wecom_callback_ready(self) -> bool:
        return bool(self.corp_id and self.callback_token and self.callback_aes_key)

    @property
    def oa_ready(self) -> bool:
        return bool(self.oa_app_id and self.oa_secret)

    @property
    def pay_ready(self) -> bool:
        return bool(self.pay_mch_id and self.pay_app_id and self.pay_apiv3_key
                    and self.pay_private_key and self.pay_cert_serial)


_lock = threading.Lock()
_cached: tuple[float, WeChatConfig] | None = None
TTL_SECONDS = 60.0


def _row() -> Any:
    from weiying.wechat.models import WeChatSettings

    return WeChatSettings.objects.order_by("pk").first()


def _pay_keys_from_env() -> dict[str, str]:
    """PAY_VERIFY_KEYS: "serial=/path/to/key.pem,serial2=/path/to/cert.pem"."""
    keys: dict[str, str] = {}
    for item in env.csv("PAY_VERIFY_KEYS", []):
        serial, _sep, path = item.partition("=")
        if not serial or not path:
            raise env.ConfigError(
                "PAY_VERIFY_KEYS lists serial=/path/to.pem pairs separated by commas; "
                f"{item!r} is not one."
            )
        try:
            with open(path, encoding="ascii") as fh:
                keys[serial.strip()] = fh.read()
        except OSError as exc:
            raise env.ConfigError(f"PAY_VERIFY_KEYS: {path} cannot be read: {exc.strerror}.") \
                from None
    return keys


def load() -> WeChatConfig:
    """Read the configuration now (environment over database)."""
    row = _row()
    values: dict[str, Any] = {}
    for name, (variable, attribute, is_secret) in FIELDS.items():
        from_env = env.secret(variable) if is_secret else env.text(variable, "")
        if from_env:
            values[name] = from_env
        elif row is not None:
            values[name] = row.secret(attribute) if is_secret else getattr(row, attribute)
    keys = _pay_keys_from_env() or (dict(row.pay_verify_keys) if row is not None else {})
    return WeChatConfig(**values, pay_verify_keys=keys)


def current() -> WeChatConfig:
    """The configuration, cached for a minute in this process."""
    global _cached
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < TTL_SECONDS:
            return _cached[1]
    config = load()
    with _lock:
        _cached = (time.monotonic(), config)
    return config


def forget() -> None:
    global _cached
    with _lock:
        _cached = None


@transaction.atomic
def save_settings(*, actor: Any, **values: Any) -> Any:
    """Store credentials (secrets encrypted). Values not given stay as they are; an empty
    string clears one. The audit row names what changed, never a secret's value."""
    from weiying.core.permissions import require
    from weiying.org.services import get_company
    from weiying.wechat.models import WeChatSettings

    if actor is not None:
        require(actor, "settings.manage")
    row, _created = WeChatSettings.objects.select_for_update().get_or_create(
        company=get_company()
    )
    changed = []
    for name, value in values.items():
        if name == "pay_verify_keys":
            row.pay_verify_keys = dict(value)
            changed.append(name)
            continue
        if name not in FIELDS:
            raise KeyError(f"unknown WeChat setting {name!r}")
        _variable, attribute, is_secret = FIELDS[name]
        if is_secret:
            row.set_secret(attribute, value or "")
        else:
            setattr(row, attribute, value or "")
        changed.append(name)
    row.save()
    audit.record(actor, "wechat.settings", row, after={"changed": sorted(changed)})
    transaction.on_commit(forget)
    return row
