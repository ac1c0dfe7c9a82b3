"""Follow-up reminders: every 15 minutes, mark the plans falling due in the next 15 minutes
and emit "followup.due" for each (the WeChat layer pushes it to the rep; the plan also shows
on the rep's "my day")."""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.core import events
from weiying.pipeline.models import FollowUp

logger = logging.getLogger(__name__)

WINDOW = dt.timedelta(minutes=15)


def remind_due_followups(*, now: dt.datetime | None = None) -> list[int]:
    """Stamp `reminded_at` on open plans due before now + 15 minutes and not yet reminded,
    emit "followup.due" for each; returns their ids. Safe to run twice: a reminded plan is
    never picked again."""
    started = time.monotonic()
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            FollowUp.objects.select_for_update(skip_locked=True)
            .filter(next_done=False, next_at__isnull=False, next_at__lte=now + WINDOW,
                    reminded_at__isnull=True)
            .values_list("pk", "owner_id", "next_at")
        )
        ids = [pk for pk, _owner, _at in due]
        FollowUp.objects.filter(pk__in=ids, reminded_at__isnull=True).update(reminded_at=now)
        for pk, owner_id, next_at in due:
            events.emit("followup.due", FollowUp(pk=pk), owner_id=owner_id, due_at=next_at)
    logger.info(
        "follow-up reminders recorded",
        extra={"count": len(ids), "ms": int((time.monotonic() - started) * 1000)},
    )
    return ids


@db_periodic_task(crontab(minute="*/15"))
def remind_due_followups_task() -> None:
    remind_due_followups()
