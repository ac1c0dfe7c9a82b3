"""`{% select_options items selected %}`: the <option>s of a picker in one Python call.

A list page's owner picker holds hundreds of people; a `{% for %}` with an `{% if %}` per
option costs Django's template engine most of the page's time. Items are model instances
(value = pk, label = the `label` attribute, default `name`) or (value, label) pairs; the
selected value is compared as text, as it arrives in a query string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def select_options(items: Iterable[Any], selected: Any = "", label: str = "name") -> SafeString:
    chosen = "" if selected is None else str(selected)
    parts = []
    for item in items:
        if isinstance(item, tuple | list):
            value, text = item[0], item[1]
        else:
            value, text = item.pk, getattr(item, label)
        flag = " selected" if str(value) == chosen else ""
        parts.append(f'<option value="{escape(value)}"{flag}>{escape(text)}</option>')
    return mark_safe("".join(parts))  # noqa: S308 - every value and label is escaped above
