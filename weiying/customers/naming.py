"""The normalised name used to find duplicate customers (name_key)."""

from __future__ import annotations

import re
import unicodedata

# Longest first, so 股份有限公司 is dropped whole before 有限公司 could match its tail.
COMPANY_SUFFIXES = (
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "集团", "公司",
    "coltd", "ltd", "limited", "inc", "corp", "corporation", "llc", "group",
)
_DROP = re.compile(r"[\W_]+", re.UNICODE)


def name_key(name: str | None) -> str:
    """Full-width to half-width, lower-case, no spaces or punctuation, no company suffix.

    上海 星辰科技（集团）有限公司 and 上海星辰科技集团 give the same key, 上海星辰科技.
    """
    if not name:
        return ""
    text = unicodedata.normalize("NFKC", name).lower()
    text = _DROP.sub("", text)
    stripped = True
    while stripped:
        stripped = False
        for suffix in COMPANY_SUFFIXES:
            # Keep at least two characters, so a name that is only a suffix keeps a key.
            if text.endswith(suffix) and len(text) - len(suffix) >= 2:
                text = text[: -len(suffix)]
                stripped = True
                break
    return text[:128]
