"""Follow-up reminders: every 15 minutes, mark the plans falling due in the next 15 minutes.

Limitation: nothing is pushed yet; the reminder is recorded (`reminded_at`) and the plan
shows on the rep's "my day". The WeChat push will read the same rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.pipeline.models import FollowUp

logger = logging.getLogger(__name__)

WINDOW = dt.timedelta(minutes=15)


def remind_due_followups(*, now: dt.datetime | None = None) -> list[int]:
    """Stamp `reminded_at` on open plans due before now + 15 minutes and not yet reminded;
    returns their ids. Safe to run twice: a reminded plan is never picked again."""
    started = time.monotonic()
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            FollowUp.objects.select_for_update(skip_locked=True)
            .filter(next_done=False, next_at__isnull=False, next_at__lte=now + WINDOW,
                    reminded_at__isnull=True)
            .values_list("pk", flat=True)
        )
        FollowUp.objects.filter(pk__in=ids, reminded_at__isnull=True).update(reminded_at=now)
    logger.info(
        "follow-up reminders recorded",
        extra={"count": len(ids), "ms": int((time.monotonic() - started) * 1000)},
    )
    return ids


@db_periodic_task(crontab(minute="*/15"))
def remind_due_followups_task() -> None:
    remind_due_followups()
