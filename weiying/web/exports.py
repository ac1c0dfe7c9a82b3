"""List exports (CSV or Excel), scoped and audited.

A list view passes its already-scoped, already-filtered queryset and the columns; the
export streams rows in primary-key batches so memory stays flat on large lists.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.utils import timezone

from weiying.core import audit
from weiying.core.permissions import require

Column = tuple[Any, Callable[[Any], Any]]
BATCH = 2000
MAX_ROWS = 1_000_000


def wants_export(request: HttpRequest) -> str | None:
    fmt = request.GET.get("export", "")
    return fmt if fmt in {"csv", "xlsx"} else None


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
