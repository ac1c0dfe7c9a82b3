"""The desktop overview: a few figures for the signed-in user's scope."""

from __future__ import annotations

from typing import Any


def overview(user: Any) -> dict[str, Any]:
    return {}
