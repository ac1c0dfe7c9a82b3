"""Periodic check of service-ticket deadlines."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.core import events
from weiying.pipeline.choices import TicketStatus
from weiying.pipeline.models import Ticket
from weiying.pipeline.selectors.tickets import active_breached_q

logger = logging.getLogger(__name__)

SAMPLE = 20
BATCH = 2000  # deadlines announced per run; the next run (ten minutes on) takes the rest


def log_sla_breaches() -> dict[str, int]:
    """Count the tickets still being worked whose deadline has passed, and announce each
    newly breached deadline once (event ticket.sla_breached: the WeChat layer tells the
    assignee and their manager). A conditional update marks a deadline announced, so two
    workers running the check at once announce it once."""
    now = timezone.now()
    breached = Ticket.objects.filter(active_breached_q(now))
    counts = breached.aggregate(
        total=Count("pk"),
        respond=Count("pk", filter=Q(responded_at__isnull=True, respond_by__lt=now)),
        resolve=Count("pk", filter=Q(resolved_at__isnull=True, resolve_by__lt=now)),
    )
    announced = 0
    active = Q(status__in=[TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING])
    for step, deadline, done, mark in (("respond", "respond_by", "responded_at",
                                        "respond_breach_at"),
                                       ("resolve", "resolve_by", "resolved_at",
                                        "resolve_breach_at")):
        fresh = Ticket.objects.filter(active, **{f"{done}__isnull": True,
                                                 f"{deadline}__lt": now,
                                                 f"{mark}__isnull": True})
        for pk, owner_id, due in fresh.values_list("pk", "owner_id", deadline)[:BATCH]:
            with transaction.atomic():
                if not Ticket.objects.filter(pk=pk, **{f"{mark}__isnull": True}).update(
                        **{mark: now}):
                    continue  # another worker announced it
                ticket = Ticket(pk=pk)
                events.emit("ticket.sla_breached", ticket, step=step, owner_id=owner_id,
                            deadline=due.isoformat())
                announced += 1
    counts["announced"] = announced
    if counts["total"]:
        sample = list(breached.order_by("resolve_by", "pk").values_list("pk", flat=True)[:SAMPLE])
        logger.warning(
            "service tickets past their SLA: %s (response %s, resolution %s), %s announced",
            counts["total"], counts["respond"], counts["resolve"], announced,
            extra={"ticket_ids": sample, **counts},
        )
    else:
        logger.info("no service ticket past its SLA")
    return counts


@db_periodic_task(crontab(minute="*/10"))
def ticket_sla_check() -> None:
    log_sla_breaches()
