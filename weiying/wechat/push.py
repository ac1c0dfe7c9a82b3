"""The outbox sender: WeCom app messages to employees, written once per business event and
sent at a pace WeCom accepts.

Life of a row: pending → sending (leased) → sent | failed (retried with backoff and jitter)
→ dead (after WECHAT["PUSH_MAX_ATTEMPTS"] tries, or at once when WeCom names the recipient
invalid; an administrator may retry it) | skipped (the employee has no WeCom account or has
left: kept, so the desk shows what was not sent and why).

Pacing: WeCom drops app messages past 30 a minute and 1,000 an hour per member without a
word, so before each send the sender counts what went to that member in the last minute and
hour (and what other workers are sending right now); a row over the budget is postponed to
the moment a slot frees (`not_before`), never sent into the void.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Min, Q
from django.urls import reverse
from django.utils import timezone

from weiying.core import audit
from weiying.wechat import client
from weiying.wechat import config as wechat_config
from weiying.wechat.choices import OutboxStatus
from weiying.wechat.inbox import backoff
from weiying.wechat.models import OutboxMessage

logger = logging.getLogger(__name__)

MSGTYPES = ("text", "textcard", "markdown", "template_card")
LEASE_SECONDS = 60
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
# WeCom drops a repeat of the same content to the same member within this window: a send the
# worker died in the middle of and then retried is not shown twice.
# Limitation: a worker killed after WeCom accepted a message but before the row was marked
# sent retries it (at least once, not exactly once); WeCom's duplicate check hides the repeat
# only when the retry comes within these 30 minutes.
DUPLICATE_CHECK_SECONDS = 1800
# errcode 81013: "user & party & tag all invalid" (the only recipient is unknown or disabled).
ALL_INVALID = 81013


# --- Building messages ------------------------------------------------------------------------
def absolute_url(name: str, *args: Any, query: str = "") -> str:
    """A link to one of the app's pages for a card, on settings.WEIYING_BASE_URL."""
    return settings.WEIYING_BASE_URL + reverse(name, args=args) + query


def textcard(*, title: str, lines: Iterable[str], url: str, button: str = "") -> dict[str, Any]:
    """A text card: a title, a few grey lines and a link. WeCom refuses a title over 128
    bytes and a description over 512, so both are cut here, on whole characters and whole
    lines (a cut tag would show as text)."""
    description = ""
    for line in lines:
        part = f'<div class="gray">{_escape(_cut(line, 200))}</div>'
        if len((description + part).encode()) > 512:
            break
        description += part
    card = {"title": _cut(title, 128), "description": description, "url": url}
    if button:
        card["btntxt"] = button[:4]
    return {"msgtype": "textcard", "textcard": card}


def markdown(content: str) -> dict[str, Any]:
    """A markdown message (WeCom shows it in its own app, not in WeChat); at most 2048 bytes."""
    return {"msgtype": "markdown", "markdown": {"content": _cut(content, 2048)}}


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut on a character, "…" marking the cut."""
    text = str(text)
    if len(text.encode()) <= limit:
        return text
    text = text[:limit]
    while len((text + "…").encode()) > limit:
        text = text[:-1]
    return text + "…"


def _check(kind: str, content: dict[str, Any], dedup_key: str) -> None:
    msgtype = content.get("msgtype")
    if msgtype not in MSGTYPES or not isinstance(content.get(msgtype), dict):
        raise ValueError(f"outbox content needs a msgtype of {MSGTYPES} and its body")
    if not kind or len(kind) > 48 or not dedup_key or len(dedup_key) > 160:
        raise ValueError("outbox kind (≤48) and dedup_key (≤160) are required")


# --- Writing ----------------------------------------------------------------------------------
def _status_for(employee: Any) -> tuple[str, str, str]:
    """(status, to_userid, why) for a message to `employee`."""
    if employee is None:
        return OutboxStatus.SKIPPED, "", "no recipient"
    if not employee.is_active:
        return OutboxStatus.SKIPPED, employee.wecom_userid, "the employee has left"
    if not employee.wecom_userid:
        return OutboxStatus.SKIPPED, "", "the employee has no WeCom user id"
    return OutboxStatus.PENDING, employee.wecom_userid, ""


def enqueue(*, kind: str, employee: Any, content: dict[str, Any],
            dedup_key: str) -> OutboxMessage | None:
    """Write one message to `employee`, or nothing if `dedup_key` was written before (a
    replayed event, a second run of a job): returns the new row, or None for a repeat.

    An employee without a WeCom user id (or who has left) gets a "skipped" row. Sending is
    queued after commit; the minute sweep picks up anything whose queue message was lost.
    """
    _check(kind, content, dedup_key)
    status, userid, why = _status_for(employee)
    try:
        with transaction.atomic():
            row = OutboxMessage.objects.create(
                dedup_key=dedup_key, kind=kind, employee=employee, to_userid=userid,
                content=content, status=status, last_error=why,
            )
    except IntegrityError:
        logger.debug("outbox duplicate", extra={"dedup_key": dedup_key})
        return None
    if status == OutboxStatus.PENDING:
        transaction.on_commit(kick)
    return row


def enqueue_many(items: Iterable[tuple[str, Any, dict[str, Any], str]]) -> int:
    """Write many messages at once, (kind, employee, content, dedup_key) each; keys written
    before are left alone. Returns how many rows the batch held (repeats included: a bulk
    insert that ignores conflicts cannot tell them apart). One INSERT per batch."""
    rows = []
    for kind, employee, content, dedup_key in items:
        _check(kind, content, dedup_key)
        status, userid, why = _status_for(employee)
        rows.append(OutboxMessage(dedup_key=dedup_key, kind=kind, employee=employee,
                                  to_userid=userid, content=content, status=status,
                                  last_error=why))
    if not rows:
        return 0
    OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    transaction.on_commit(kick)
    return len(rows)


def kick() -> None:
    """Queue a send run now (after the commit that wrote the rows)."""
    try:
        from weiying.wechat.tasks import send_outbox_task

        send_outbox_task()
    except Exception:  # noqa: BLE001 - the minute sweep sends it; never fail the writer
        logger.warning("outbox kick failed; the minute sweep will send", exc_info=True)


# --- Sending ----------------------------------------------------------------------------------
def _conf(name: str) -> int:
    return int(settings.WECHAT[name])


def sweep(now: dt.datetime) -> int:
    """Return rows whose lease ran out (their worker died mid-send) to the queue."""
    count = OutboxMessage.objects.filter(status=OutboxStatus.SENDING, lease_until__lt=now).update(
        status=OutboxStatus.FAILED, lease_until=None, not_before=now,
        last_error="the worker stopped while sending; retried",
    )
    if count:
        logger.warning("outbox sweep re-queued stalled rows", extra={"count": count})
    return count


def _claim(pk: int, now: dt.datetime) -> bool:
    return bool(OutboxMessage.objects.filter(
        pk=pk, status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED], not_before__lte=now,
    ).update(status=OutboxStatus.SENDING, lease_until=now + dt.timedelta(seconds=LEASE_SECONDS),
             attempts=F("attempts") + 1))


def slot_free_at(userid: str, now: dt.datetime, *, exclude: int | None = None
                 ) -> dt.datetime | None:
    """None when one more message to `userid` fits the minute and hour budgets now; else
    when the next slot frees. Rows other workers are sending count as sent."""
    busy = Q(status=OutboxStatus.SENDING)
    in_minute = Q(sent_at__gt=now - MINUTE, sent_at__lte=now)
    window = OutboxMessage.objects.filter(to_userid=userid).filter(
        Q(sent_at__gt=now - HOUR, sent_at__lte=now) | busy)
    if exclude is not None:
        window = window.exclude(pk=exclude)
    seen = window.aggregate(
        minute=Count("pk", filter=in_minute | busy), hour=Count("pk"),
        first_in_minute=Min("sent_at", filter=in_minute), first_in_hour=Min("sent_at"),
    )
    free_at = None
    if seen["minute"] >= _conf("PUSH_PER_MINUTE"):
        free_at = (seen["first_in_minute"] or now) + MINUTE
    if seen["hour"] >= _conf("PUSH_PER_HOUR"):
        free_at = max(free_at or now, (seen["first_in_hour"] or now) + HOUR)
    return free_at


def _postpone(pk: int, until: dt.datetime, *, leased: bool) -> None:
    """Move a row to `until`; a postponement is not an attempt."""
    if leased:
        OutboxMessage.objects.filter(pk=pk, status=OutboxStatus.SENDING).update(
            status=OutboxStatus.PENDING, not_before=until, lease_until=None,
            attempts=F("attempts") - 1)
    else:
        OutboxMessage.objects.filter(
            pk=pk, status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED],
        ).update(not_before=until)


def _finish(pk: int, **fields: Any) -> bool:
    done = OutboxMessage.objects.filter(pk=pk, status=OutboxStatus.SENDING).update(
        lease_until=None, **fields)
    if not done:
        logger.warning("outbox lease lost while sending", extra={"outbox_id": pk})
    return bool(done)


def _failed(row: OutboxMessage, exc: Exception, now: dt.datetime, *, permanent: bool = False,
            wait: float = 0.0) -> str:
    attempts = row.attempts  # the claim counted this try
    dead = permanent or attempts >= _conf("PUSH_MAX_ATTEMPTS")
    status = OutboxStatus.DEAD if dead else OutboxStatus.FAILED
    delay = max(backoff(attempts), dt.timedelta(seconds=wait))
    _finish(row.pk, status=status, last_error=f"{type(exc).__name__}: {exc}"[:2000],
            not_before=now + delay)
    extra = {"outbox_id": row.pk, "kind": row.kind, "attempts": attempts}
    if dead:
        logger.error("outbox message given up: an administrator may retry it", extra=extra)
    else:
        logger.warning("outbox send failed; will retry", extra=extra)
    return status


class InvalidUser(client.WeChatError):
    """WeCom named the recipient invalid (unknown, disabled, or without a licence)."""


def _send_one(wecom: client.WeCom, row: OutboxMessage, agent_id: str, now: dt.datetime) -> str:
    body = {"touser": row.to_userid, "agentid": int(agent_id) if agent_id.isdigit() else agent_id,
            **row.content, "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_SECONDS}
    try:
        answer = wecom.post("/cgi-bin/message/send", body)
    except client.RateLimited as exc:
        return _failed(row, exc, now, wait=exc.retry_after)
    except client.ApiError as exc:
        return _failed(row, exc, now, permanent=exc.code == ALL_INVALID)
    except client.WeChatError as exc:
        return _failed(row, exc, now)
    for field in ("invaliduser", "unlicenseduser"):
        named = [u for u in str(answer.get(field, "") or "").split("|") if u]
        if row.to_userid in named:
            return _failed(row, InvalidUser(f"message/send: {field} {row.to_userid}"), now,
                           permanent=True)
    _finish(row.pk, status=OutboxStatus.SENT, sent_at=now,
            wecom_msgid=str(answer.get("msgid", ""))[:64], last_error="")
    return OutboxStatus.SENT


def send_due(limit: int = 200, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Send what is due, oldest first, pacing each recipient. Returns counts by outcome
    ("sent", "failed", "dead", "postponed"). `now` lets tests move time."""
    started = time.monotonic()
    now = now or timezone.now()
    counts: dict[str, int] = {}
    conf = wechat_config.current()
    if not conf.wecom_ready or not conf.agent_id:
        logger.info("outbox waits: WeCom (corp id, app secret, agent id) is not configured")
        return counts
    sweep(now)
    due = list(
        OutboxMessage.objects.filter(
            status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED], not_before__lte=now,
        ).order_by("not_before", "pk").values_list("pk", "to_userid")[:limit]
    )
    if not due:
        return counts
    full: dict[str, dt.datetime] = {}  # recipient -> when a slot frees (this run)
    wecom = client.WeCom(conf)
    try:
        for pk, userid in due:
            if userid in full:
                _postpone(pk, full[userid], leased=False)
                counts["postponed"] = counts.get("postponed", 0) + 1
                continue
            if not _claim(pk, now):
                continue  # another worker has it, or it is no longer due
            free_at = slot_free_at(userid, now, exclude=pk)
            if free_at is not None:
                full[userid] = free_at
                _postpone(pk, free_at, leased=True)
                counts["postponed"] = counts.get("postponed", 0) + 1
                continue
            row = OutboxMessage.objects.get(pk=pk)
            outcome = str(_send_one(wecom, row, conf.agent_id, now))
            counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        wecom.close()
    logger.info("outbox run done", extra={**counts,
                                          "ms": int((time.monotonic() - started) * 1000)})
    return counts


# --- Desk -------------------------------------------------------------------------------------
@transaction.atomic
def retry_message(*, actor: Any, message: OutboxMessage) -> OutboxMessage:
    """Put a message that was given up back in the queue, to the employee's current WeCom
    user id (a renamed account is the usual cause of "invaliduser")."""
    from django.utils.translation import gettext as _

    from weiying.core.errors import InvalidTransition
    from weiying.core.permissions import require

    require(actor, "settings.manage")
    employee = message.employee
    userid = (employee.wecom_userid if employee is not None and employee.wecom_userid
              else message.to_userid)
    updated = OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.DEAD).update(
        status=OutboxStatus.PENDING, attempts=0, not_before=timezone.now(), lease_until=None,
        to_userid=userid,
    )
    if not updated:
        raise InvalidTransition(
            _("Only a message that was given up can be retried; this one is %(status)s.")
            % {"status": message.get_status_display()}
        )
    audit.record(actor, "wechat.outbox_retry", message,
                 before={"status": message.status, "attempts": message.attempts,
                         "to_userid": message.to_userid, "last_error": message.last_error},
                 after={"status": OutboxStatus.PENDING, "to_userid": userid})
    transaction.on_commit(kick)
    message.refresh_from_db()
    return message
