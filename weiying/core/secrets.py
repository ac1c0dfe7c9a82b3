"""Encryption at rest for secrets and personal data kept in the database.

Values are Fernet tokens (AES-128-CBC + HMAC-SHA256, from `cryptography`). The key is
`WEIYING_FIELD_KEY` (a urlsafe base64 Fernet key) when set, else one derived from SECRET_KEY;
a rotation lists the old key after the new one (`WEIYING_FIELD_KEY=new,old`), and values
written under the old key stay readable.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored value was written under a key this installation no longer has."""


@functools.cache
def _fernet() -> MultiFernet:
    configured = [k.strip() for k in getattr(settings, "WEIYING_FIELD_KEYS", []) if k.strip()]
    if not configured:
        digest = hashlib.sha256(b"weiying-field-key:" + settings.SECRET_KEY.encode()).digest()
        configured = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode()) for key in configured])


def encrypt_text(value: str) -> str:
    """A token for `value` ("" stays ""); tokens differ on every call."""
    if not value:
        return ""
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_text(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the current WEIYING_FIELD_KEY; "
            "list the previous key after the new one"
        ) from None


def fingerprint(value: str) -> str:
    """A short, non-reversible mark of a secret, to show that one is set ("…3f9a")."""
    if not value:
        return ""
    return "…" + hashlib.sha256(value.encode()).hexdigest()[-4:]
