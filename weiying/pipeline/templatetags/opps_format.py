"""Template filters for the opportunity and follow-up pages."""

from __future__ import annotations

from typing import Any

from django import template

from weiying.core.money import format_cny

register = template.Library()


@register.filter
def cny(value: Any) -> str:
    """¥1,234.50, the same in every language (weiying.core.money.format_cny)."""
    return format_cny(value)
