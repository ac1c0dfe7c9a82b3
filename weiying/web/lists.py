"""Helpers for desktop list pages: whitelisted sorting and keyset pages from the query string."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from weiying.core.pagination import Page, keyset_page


@dataclass
class ListState:
    page: Page
    sort: str
    params: dict[str, str]

    def with_params(self, **changes: Any) -> str:
        """A query string with some parameters changed (for sort links and the pager)."""
        from urllib.parse import urlencode

        merged = {**self.params, **{k: v for k, v in changes.items() if v is not None}}
        return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})


def list_sort(request: HttpRequest, *, sorts: dict[str, list[str]], default: str) -> str:
    """The public sort key the query string asks for, or the default if it is not offered."""
    sort = request.GET.get("sort", default)
    return sort if sort in sorts else default


def whole_list(
    request: HttpRequest, queryset: QuerySet[Any], *, sorts: dict[str, list[str]], default: str,
) -> QuerySet[Any]:
    """Every row of the list (not one page) in the order the page shows: for exports."""
    return queryset.order_by(*sorts[list_sort(request, sorts=sorts, default=default)])


def list_page(
    request: HttpRequest, queryset: QuerySet[Any], *, sorts: dict[str, list[str]],
    default: str, size: int = 50,
) -> ListState:
    """`sorts` maps a public sort key (e.g. "-activity") to the ordering; the last field of
    each ordering must be unique (id) for keyset paging."""
    sort = list_sort(request, sorts=sorts, default=default)
    page = keyset_page(queryset, sorts[sort], cursor=request.GET.get("after") or None, size=size)
    params = {k: v for k, v in request.GET.items() if k != "after"}
    return ListState(page=page, sort=sort, params=params)
