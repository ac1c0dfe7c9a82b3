"""The scheduled reports' job: every hour, on the hour, write the cards of the schedules due
(weiying.reports.schedules.send_due; the outbox sends them at WeCom's pace)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.reports import schedules


@db_periodic_task(crontab(minute="1"))
def send_scheduled_reports() -> int:
    return schedules.send_due()
