"""Keyset pagination: a page is "the next N after this row", so page 1,000 costs what page 1
costs. The cursor is opaque to clients (base64 of the last row's sort values)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from weiying.core.errors import ValidationFailed

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None


def _encode(values: list[Any]) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return {"dt": v.isoformat()}
        if isinstance(v, dt.date):
            return {"d": v.isoformat()}
        if isinstance(v, Decimal):
            return {"n": str(v)}
        return v

    raw = json.dumps([plain(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise ValidationFailed(
            _("The page cursor is damaged; start again from the first page."), field="cursor"
        ) from None
    out = []
    for v in values:
        if isinstance(v, dict) and "dt" in v:
            out.append(parse_datetime(v["dt"]))
        elif isinstance(v, dict) and "d" in v:
            out.append(dt.date.fromisoformat(v["d"]))
        elif isinstance(v, dict) and "n" in v:
            out.append(Decimal(v["n"]))
        else:
            out.append(v)
    return out


def _after(ordering: list[str], values: list[Any]) -> Q:
    """Rows strictly after `values` in `ordering` (e.g. ["-last_activity_at", "-id"])."""
    q = Q()
    for i, field in enumerate(ordering):
        name = field.lstrip("-")
        op = "lt" if field.startswith("-") else "gt"
        if values[i] is None:
            # NULL sorts last here (ordering uses nulls_last); rows after a NULL are NULLs too.
            step = Q(**{f"{name}__isnull": True})
        else:
            step = Q(**{f"{name}__{op}": values[i]})
        for j in range(i):
            prev = ordering[j].lstrip("-")
            if values[j] is None:
                step &= Q(**{f"{prev}__isnull": True})
            else:
                step &= Q(**{prev: values[j]})
        q |= step
    return q


def keyset_page(
    queryset: QuerySet[Any], ordering: list[str], *, cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of `queryset` in `ordering`; the last field must be unique (usually id)."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    qs = queryset.order_by(*ordering)
    if cursor:
        values = _decode(cursor)
        if len(values) != len(ordering):
            raise ValidationFailed(
                _("The page cursor does not match this list's order; start from the first page."),
                field="cursor",
            )
        qs = qs.filter(_after(ordering, values))
    rows = list(qs[: size + 1])
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = _encode([_value(last, f.lstrip("-")) for f in ordering])
    return Page(items=rows, next_cursor=next_cursor)


def _value(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        obj = getattr(obj, part if part != "pk" else "pk")
        if obj is None:
            return None
    return obj
