from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    code: str
    message: str


class PageMeta(Schema):
    next_cursor: str | None = None
