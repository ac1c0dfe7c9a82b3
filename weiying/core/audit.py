"""The audit trail: every write, every unmasked view and every export leaves a row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Model
from django.forms.models import model_to_dict

from weiying.core.context import current_channel, current_ip
from weiying.core.models import AuditLog

_SECRET_FIELDS = {"password", "token_hash", "secret"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def snapshot(obj: Model | None, fields: list[str] | None = None) -> dict[str, Any] | None:
    """The row's own field values, JSON-ready, for before/after."""
    if obj is None:
        return None
    data = model_to_dict(obj, fields=fields)
    data = {k: v for k, v in data.items() if k not in _SECRET_FIELDS}
    return _jsonable(data)


def record(
    actor: Any,
    action: str,
    obj: Model | None = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    object_type: str = "",
    object_id: str | int = "",
) -> AuditLog:
    """Write one audit row; call inside the service's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None
    return AuditLog.objects.create(
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        ip=current_ip.get(),
        channel=current_channel.get(),
    )


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Only the fields that changed, as {field: [before, after]}."""
    before = before or {}
    after = after or {}
    return {
        k: [before.get(k), after.get(k)]
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }
