"""List exports (CSV or Excel), scoped and audited.

A list view passes its already-scoped, already-filtered queryset and the columns; the
export streams rows in primary-key batches so memory stays flat on large lists.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

from weiying.core import audit
from weiying.core.money import money
from weiying.core.permissions import has_perm, require

Column = tuple[Any, Callable[[Any], Any]]
BATCH = 2000
MAX_ROWS = 1_000_000


FORMATS = ("csv", "xlsx")


def wants_export(request: HttpRequest) -> str | None:
    fmt = request.GET.get("export", "")
    return fmt if fmt in FORMATS else None


def export_links(request: HttpRequest) -> dict[str, str]:
    """The toolbar's "export" links: the page's query string (filters, search, sort) without
    the page cursor, plus export=csv|xlsx. Empty for a user without the export permission,
    so the template shows no link."""
    if not has_perm(request.user, "export"):
        return {}
    from urllib.parse import urlencode

    kept = {k: v for k, v in request.GET.items() if k not in ("after", "export") and v}
    return {fmt: "?" + urlencode({**kept, "export": fmt}) for fmt in FORMATS}


def money_text(value: Any) -> str:
    """An amount as a plain decimal string, rounded to the fen: "1234.50" ("" for none)."""
    return "" if value is None else str(money(value))


def name_of(obj: Any) -> str:
    """A related row's name, "" when there is none (an unowned lead, a pool customer)."""
    return "" if obj is None else obj.name


def _rows(queryset: QuerySet[Any], columns: list[Column]) -> Iterator[list[Any]]:
    for obj in queryset.iterator(chunk_size=BATCH):
        yield [_plain(getter(obj)) for _label, getter in columns]


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo") and value.tzinfo is not None:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    return value if isinstance(value, int | str) else str(value)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_response(
    request: HttpRequest, queryset: QuerySet[Any], columns: list[Column], *, name: str,
    fmt: str,
) -> Any:
    """Check the permission, write the audit row, then stream the file."""
    require(request.user, "export")
    queryset = queryset[:MAX_ROWS]
    with transaction.atomic():
        audit.record(
            request.user, "export", object_type=queryset.model._meta.label_lower,
            after={"format": fmt, "filters": dict(request.GET.items())},
        )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"{name}-{stamp}.{fmt}"
    headers = [str(label) for label, _getter in columns]
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(name[:31])
        sheet.append(headers)
        for row in _rows(queryset, columns):
            sheet.append(row)
        handle = tempfile.TemporaryFile()
        book.save(handle)
        handle.seek(0)
        return FileResponse(handle, as_attachment=True, filename=filename)

    writer = csv.writer(_Echo())

    def stream() -> Iterator[str]:
        yield "\ufeff"  # so Excel opens UTF-8 Chinese text correctly
        yield writer.writerow(headers)
        for row in _rows(queryset, columns):
            yield writer.writerow(row)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_text(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _table_cell(value: Any, fmt: str) -> Any:
    from decimal import Decimal

    if value is None:
        return ""
    if isinstance(value, Decimal):
        return value if fmt == "xlsx" else str(value)
    return _plain(value)


def table_response(
    request: HttpRequest, *, name: str, what: str, headers: list[Any],
    rows: Iterable[list[Any]], fmt: str, cell: Any = None,
) -> Any:
    """An audited download of a report's table (already computed, already scoped): check the
    export permission, write the audit row naming `what` and the filters, then .xlsx
    (numbers stay numbers) or UTF-8 CSV with a BOM. `cell(value, fmt)` writes one value
    (the finance desk's rounds amounts to the fen)."""
    _table_cell_of = cell or _table_cell
    require(request.user, "export")
    with transaction.atomic():
        audit.record(request.user, "export", object_type=what,
                     after={"format": fmt, "filters": dict(request.GET.items())})
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"{name}-{stamp}.{fmt}"
    heads = [str(h) for h in headers]
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(name[:31])
        sheet.append(heads)
        for row in rows:
            sheet.append([_table_cell_of(v, fmt) for v in row])
        handle = tempfile.TemporaryFile()
        book.save(handle)
        handle.seek(0)
        return FileResponse(handle, as_attachment=True, filename=filename)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(heads)
    for row in rows:
        writer.writerow([_table_cell_of(v, fmt) for v in row])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
