"""The inbox: every callback and notification is stored before it is answered, then
processed by a worker through a table of handlers.

Life of a row: pending → processing (leased) → done | ignored (no handler: acknowledged and
kept) | failed (retried with exponential backoff and jitter) → dead (after
WECHAT["INBOX_MAX_ATTEMPTS"] tries; an administrator can replay it). A sweeper returns rows
whose lease ran out (a killed worker) to the queue.

Handlers run in one transaction with the row's status change, so a crash between a business
effect and its "done" mark cannot happen; handlers must still be idempotent in what they
write (unique constraints, conditional updates), because Tencent retries and people replay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from weiying.core import audit
from weiying.wechat.choices import InboxSource, InboxStatus
from weiying.wechat.models import InboxMessage, store_payload

logger = logging.getLogger(__name__)

# A handler receives the row and the parsed message; it may return a short note.
Handler = Callable[[InboxMessage, dict[str, Any]], Any]
_HANDLERS: dict[tuple[str, str], Handler] = {}
_DISCOVERED = False

BACKOFF_BASE_SECONDS = 15
BACKOFF_CAP_SECONDS = 3600


def handles(source: str, kind: str) -> Callable[[Handler], Handler]:
    """Register a handler for a source and a kind ("event:change_external_contact:
    add_external_contact", "msg:text", "pay:TRANSACTION.SUCCESS"). A kind may name a prefix
    ("event:change_contact") that covers the longer kinds under it."""
    if source not in InboxSource.values:
        raise ValueError(f"unknown inbox source {source!r}")

    def register(handler: Handler) -> Handler:
        _HANDLERS[(source, kind)] = handler
        return handler

    return register


def _discover() -> None:
    global _DISCOVERED
    if not _DISCOVERED:
        import importlib

        for module in ("weiying.wechat.handlers",):
            importlib.import_module(module)
        _DISCOVERED = True


def handler_for(source: str, kind: str) -> tuple[str, Handler] | None:
    """The most specific handler: the whole kind, then each shorter prefix."""
    _discover()
    parts = kind.split(":")
    for end in range(len(parts), 0, -1):
        key = ":".join(parts[:end])
        handler = _HANDLERS.get((source, key))
        if handler is not None:
            return key, handler
    return None


# --- Receiving --------------------------------------------------------------------------------
def kind_of(source: str, message: dict[str, Any]) -> str:
    if source == InboxSource.PAY:
        return f"pay:{message.get('event_type', '')}"
    msg_type = message.get("MsgType", "")
    if msg_type == "event":
        kind = f"event:{message.get('Event', '')}"
        if message.get("ChangeType"):
            kind += f":{message['ChangeType']}"
        return kind[:96]
    return f"msg:{msg_type}"[:96]


def dedup_key_of(source: str, message: dict[str, Any], plaintext: bytes) -> str:
    """A message id where Tencent gives one; else a hash of the whole decrypted plaintext,
    which a retry repeats byte for byte and two distinct events never share."""
    if source == InboxSource.PAY and message.get("id"):
        return f"id:{message['id']}"[:128]
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"[:128]
    return "sha256:" + hashlib.sha256(plaintext).hexdigest()


def receive(source: str, plaintext: bytes, message: dict[str, Any]) -> tuple[InboxMessage, bool]:
    """Store one delivery. Returns (row, created); a repeat only counts the delivery.

    Processing is queued after commit; if the queue is down the periodic drain picks the row
    up, so the caller can answer Tencent at once either way.
    """
    key = dedup_key_of(source, message, plaintext)
    try:
        with transaction.atomic():
            row = InboxMessage.objects.create(
                source=source, dedup_key=key, kind=kind_of(source, message),
                payload_enc=store_payload(plaintext.decode("utf-8", "replace")),
            )
    except IntegrityError:
        InboxMessage.objects.filter(source=source, dedup_key=key).update(
            deliveries=F("deliveries") + 1
        )
        row = InboxMessage.objects.get(source=source, dedup_key=key)
        logger.info("inbox duplicate", extra={"inbox_id": row.pk, "source": source})
        return row, False
    transaction.on_commit(lambda: _enqueue(row.pk))
    logger.info("inbox stored", extra={"inbox_id": row.pk, "source": source, "kind": row.kind})
    return row, True


def _enqueue(pk: int) -> None:
    try:
        from weiying.wechat.tasks import process_inbox_task

        process_inbox_task(pk)
    except Exception:  # noqa: BLE001 - the drain picks the row up; never fail the callback
        logger.warning("inbox enqueue failed; the drain will pick it up", exc_info=True,
                       extra={"inbox_id": pk})


def parse(row: InboxMessage) -> dict[str, Any]:
    """The stored plaintext as a dict: JSON for Pay, XML for the rest."""
    text = row.payload
    if row.source == InboxSource.PAY:
        return dict(json.loads(text))
    from weiying.wechat.crypto import parse_xml

    return parse_xml(text.encode("utf-8"), max_bytes=10 * 1024 * 1024)


# --- Processing -------------------------------------------------------------------------------
def _conf(name: str) -> int:
    return int(settings.WECHAT[name])


def backoff(attempts: int) -> dt.timedelta:
    """Exponential, capped, with ±50 % jitter so retries of a burst spread out."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return dt.timedelta(seconds=base * random.uniform(0.5, 1.5))  # noqa: S311 - not security


def _claim(pk: int, now: dt.datetime) -> bool:
    lease = now + dt.timedelta(seconds=_conf("INBOX_LEASE_SECONDS"))
    return bool(InboxMessage.objects.filter(
        pk=pk, status__in=[InboxStatus.PENDING, InboxStatus.FAILED], next_attempt_at__lte=now,
    ).update(status=InboxStatus.PROCESSING, lease_until=lease, attempts=F("attempts") + 1))


def process(pk: int) -> str | None:
    """Process one row if it is due and nobody else holds it. Returns its new status, or None
    when it was not ours to process."""
    started = time.monotonic()
    if not _claim(pk, timezone.now()):
        return None
    row = InboxMessage.objects.get(pk=pk)
    found = handler_for(row.source, row.kind)
    if found is None:
        InboxMessage.objects.filter(pk=pk, status=InboxStatus.PROCESSING).update(
            status=InboxStatus.IGNORED, handled_at=timezone.now(), lease_until=None,
            last_error="",
        )
        logger.info("inbox ignored: no handler", extra={"inbox_id": pk, "kind": row.kind})
        return InboxStatus.IGNORED
    name, handler = found
    try:
        with transaction.atomic():
            handler(row, parse(row))
            done = InboxMessage.objects.filter(pk=pk, status=InboxStatus.PROCESSING).update(
                status=InboxStatus.DONE, handled_at=timezone.now(), lease_until=None,
                handler=name, last_error="",
            )
            if not done:
                # The sweeper took the row back while we worked: undo, let the retry win.
                raise _LeaseLost
    except _LeaseLost:
        logger.warning("inbox lease lost", extra={"inbox_id": pk})
        return None
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
        return _failed(row, name, exc)
    logger.info("inbox done", extra={"inbox_id": pk, "kind": row.kind, "handler": name,
                                     "ms": int((time.monotonic() - started) * 1000)})
    return InboxStatus.DONE


class _LeaseLost(Exception):
    pass


def _failed(row: InboxMessage, handler: str, exc: Exception) -> str:
    attempts = InboxMessage.objects.values_list("attempts", flat=True).get(pk=row.pk)
    dead = attempts >= _conf("INBOX_MAX_ATTEMPTS")
    status = InboxStatus.DEAD if dead else InboxStatus.FAILED
    error = f"{type(exc).__name__}: {exc}"[:2000]
    InboxMessage.objects.filter(pk=row.pk, status=InboxStatus.PROCESSING).update(
        status=status, lease_until=None, handler=handler, last_error=error,
        next_attempt_at=timezone.now() + backoff(attempts),
    )
    if dead:
        logger.error("inbox dead letter: an administrator must look", exc_info=exc,
                     extra={"inbox_id": row.pk, "kind": row.kind, "attempts": attempts})
    else:
        logger.warning("inbox handler failed; will retry", exc_info=exc,
                       extra={"inbox_id": row.pk, "kind": row.kind, "attempts": attempts})
    return status


def due_ids(limit: int = 200) -> list[int]:
    return list(
        InboxMessage.objects.filter(
            status__in=[InboxStatus.PENDING, InboxStatus.FAILED],
            next_attempt_at__lte=timezone.now(),
        ).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]
    )


def drain(limit: int = 200) -> dict[str, int]:
    """Process what is due now, oldest first. Returns counts by resulting status."""
    counts: dict[str, int] = {}
    for pk in due_ids(limit):
        status = process(pk)
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    return counts


def sweep() -> int:
    """Return rows whose lease ran out (their worker died) to the queue."""
    now = timezone.now()
    stalled = InboxMessage.objects.filter(status=InboxStatus.PROCESSING, lease_until__lt=now)
    count = stalled.update(status=InboxStatus.FAILED, lease_until=None, next_attempt_at=now,
                           last_error="the worker stopped while processing; retried")
    if count:
        logger.warning("inbox sweep re-queued stalled rows", extra={"count": count})
    return count


@transaction.atomic
def replay(*, actor: Any, message: InboxMessage) -> InboxMessage:
    """Put a dead-lettered (or failed, or ignored) row back in the queue from the start."""
    from django.utils.translation import gettext as _

    from weiying.core.errors import InvalidTransition
    from weiying.core.permissions import require

    require(actor, "settings.manage")
    replayable = [InboxStatus.DEAD, InboxStatus.FAILED, InboxStatus.IGNORED]
    updated = InboxMessage.objects.filter(pk=message.pk, status__in=replayable).update(
        status=InboxStatus.PENDING, attempts=0, next_attempt_at=timezone.now(),
        lease_until=None,
    )
    if not updated:
        raise InvalidTransition(
            _("Only a dead, failed or ignored message can be replayed; this one is %(status)s.")
            % {"status": message.get_status_display()}
        )
    audit.record(actor, "wechat.inbox_replay", message,
                 before={"status": message.status, "attempts": message.attempts})
    transaction.on_commit(lambda: _enqueue(message.pk))
    message.refresh_from_db()
    return message
