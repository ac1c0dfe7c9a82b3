from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from weiying.core import events
from weiying.core.models import DomainEvent

logger = logging.getLogger(__name__)


@db_task(retries=3, retry_delay=10)
def dispatch_event_task(event_id: int) -> None:
    event = DomainEvent.objects.filter(pk=event_id).first()
    if event is not None and events.dispatch(event):
        raise RuntimeError(f"event {event_id} has failed subscribers; retrying")


@db_periodic_task(crontab(minute="*/5"))
def sweep_undispatched_events() -> None:
    """Catch events whose dispatch was lost (worker killed, queue down)."""
    failures = events.replay()
    logger.info("event sweep done", extra={"failures": failures})
