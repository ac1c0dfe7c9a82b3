"""The month's commission statements drafted on the 1st: once the night's rebuild has put the
last month's facts right, every rep a valid plan covers gets a draft statement for it, ready
for their manager to check and approve. Statements already submitted or approved are left as
they are; a draft computed by hand earlier is computed again from the final figures."""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from weiying.performance import commissions
from weiying.performance.achievement import _System
from weiying.performance.selectors import Period

logger = logging.getLogger(__name__)


def draft_last_month(today: dt.date | None = None) -> commissions.ComputeResult:
    today = today or timezone.localdate()
    month = Period.of(today.replace(day=1) - dt.timedelta(days=1))
    result = commissions.compute_month(actor=_System(), month=month)
    logger.info("commission statements drafted", extra={
        "month": month.label, "statements": len(result.statements),
        "skipped": len(result.skipped)})
    return result


@db_periodic_task(crontab(day="1", hour="4", minute="30"))
@lock_task("commission-drafts")
def draft_commission_statements() -> int:
    return len(draft_last_month().statements)
