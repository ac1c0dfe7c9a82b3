"""Typed domain errors with stable codes. The API answers {"code": …, "message": …}."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A refusal a person can act on: `message` says what was wrong and what to do."""

    code = "invalid"
    status = 400

    def __init__(
        self,
        message: Any,
        *,
        code: str | None = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(str(message))
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.errors = errors or []

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.field:
            body["field"] = self.field
        if self.errors:
            body["errors"] = self.errors
        return body


class ValidationFailed(DomainError):
    code = "invalid"
    status = 400


class NotFound(DomainError):
    code = "not_found"
    status = 404

    def __init__(self, message: Any = None, **kwargs: Any) -> None:
        super().__init__(message or _("Not found, or outside what you may see."), **kwargs)


class PermissionDenied(DomainError):
    code = "forbidden"
    status = 403


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidTransition(Conflict):
    code = "invalid_transition"
