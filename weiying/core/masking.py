"""Masking of personal data shown by default (PIPL: mask unless the role may see it)."""

from __future__ import annotations

import re

_NON_DIGIT = re.compile(r"\D")


def normalise_phone(raw: str | None) -> str:
    """Digits only, with a leading +86/86 dropped from an 11-digit Chinese mobile."""
    if not raw:
        return ""
    digits = _NON_DIGIT.sub("", raw)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def mask_phone(raw: str | None) -> str:
    """138****1234 for a mobile; for other lengths keep the first 3 and last 4 where possible."""
    digits = normalise_phone(raw)
    if not digits:
        return ""
    if len(digits) <= 7:
        return digits[:1] + "*" * (len(digits) - 1)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits.startswith("1")
