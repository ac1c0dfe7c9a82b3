"""Domain events through an outbox.

A service calls `emit(...)` inside its transaction; the row commits with the change. After
commit the events are dispatched to subscribers: by the task worker in production, in
process when tasks run immediately (tests). Each (event, subscriber) pair is recorded once,
so a replay never applies a subscriber twice; subscribers must still be idempotent in what
they write, because a crash can fall between their work and that record.

Subscribers register with `@subscribe("lead.assigned")` in an app's `subscribers.py`.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from weiying.core.audit import _jsonable
from weiying.core.models import DomainEvent, EventHandling

logger = logging.getLogger(__name__)

Handler = Callable[[DomainEvent], None]
_SUBSCRIBERS: dict[str, list[Handler]] = defaultdict(list)

# The names every layer may subscribe to. Emitting a name not listed here is a bug.
EVENT_NAMES = {
    "lead.created", "lead.imported", "customer.imported", "lead.assigned", "lead.converted", "lead.disqualified",
    "customer.created", "customer.claimed", "customer.released", "customer.assigned",
    "customer.merged", "customer.recycle_warning",
    "opportunity.created", "opportunity.stage_changed", "opportunity.won", "opportunity.lost",
    "opportunity.reassigned",
    "followup.logged", "followup.due",
    "contract.submitted", "contract.approved", "contract.rejected", "contract.signed",
    "contract.cancelled", "contract.completed",
    "receipt.recorded", "delivery.recorded", "delivery.accepted",
    # operations: delivery orders (交付单) and stock
    "delivery_order.created", "delivery_order.shipped", "delivery_order.delivered",
    "delivery_order.accepted", "delivery_order.cancelled", "delivery_order.late",
    "stock.reserved", "stock.released", "stock.adjusted",
    # finance
    "refund.recorded", "invoice.issued", "invoice.voided", "voucher.posted", "period.closed",
    "bank_line.matched",
    "payorder.created", "payorder.paid", "payorder.closed",
    "ticket.opened", "ticket.closed", "ticket.sla_breached",
    "department.created", "department.moved", "department.updated",
    "employee.created", "employee.updated", "employee.transferred", "employee.leader_changed",
    "employee.left", "employee.promoted",
    "channel.created", "channel.updated", "channel.deactivated", "channel.arrived",
    "follower.subscribed", "follower.unsubscribed",
    "commission_plan.saved", "commission.computed", "commission.submitted", "commission.approved", "commission.rejected",
    "target.set", "target.decomposed", "targets.imported",
}


def subscribe(name: str) -> Callable[[Handler], Handler]:
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event {name!r}")

    def register(handler: Handler) -> Handler:
        if handler not in _SUBSCRIBERS[name]:
            _SUBSCRIBERS[name].append(handler)
        return handler

    return register


def subscribers(name: str) -> list[Handler]:
    return list(_SUBSCRIBERS[name])


def autodiscover() -> None:
    for config in apps.get_app_configs():
        if config.name.startswith("weiying."):
            try:
                importlib.import_module(f"{config.name}.subscribers")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.subscribers":
                    raise


def emit(name: str, subject: Model, *, actor: Any = None, **data: Any) -> DomainEvent:
    """Record an event in the caller's transaction and dispatch it after commit."""
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event {name!r}")
    event = DomainEvent.objects.create(
        name=name,
        actor_id=actor.pk if getattr(actor, "is_authenticated", False) else None,
        subject_type=subject._meta.label_lower,
        subject_id=str(subject.pk),
        data=_jsonable(data),
    )
    transaction.on_commit(lambda: _schedule(event.pk))
    return event


def _schedule(event_id: int) -> None:
    from weiying.core.tasks import dispatch_event_task

    dispatch_event_task(event_id)


def dispatch(event: DomainEvent) -> int:
    """Run every subscriber that has not yet handled this event; returns failures."""
    failures = 0
    for handler in subscribers(event.name):
        key = f"{handler.__module__}.{handler.__qualname__}"
        if EventHandling.objects.filter(event=event, subscriber=key, status="done").exists():
            continue
        try:
            with transaction.atomic():
                handler(event)
                EventHandling.objects.update_or_create(
                    event=event, subscriber=key, defaults={"status": "done", "error": ""}
                )
        except IntegrityError:
            # Another worker recorded this pair first: it has been handled.
            continue
        except Exception as exc:
            failures += 1
            logger.exception(
                "event subscriber failed", extra={"event_id": event.pk, "subscriber": key}
            )
            handling, created = EventHandling.objects.get_or_create(
                event=event, subscriber=key, defaults={"status": "failed", "error": repr(exc)}
            )
            if not created:
                handling.status = "failed"
                handling.error = repr(exc)
                handling.attempts += 1
                handling.save(update_fields=["status", "error", "attempts", "handled_at"])
    if failures == 0:
        DomainEvent.objects.filter(pk=event.pk).update(dispatched_at=timezone.now())
    return failures


def replay(queryset: Any = None) -> int:
    """Dispatch every event not yet fully handled (or the ones given). Safe to repeat."""
    queryset = queryset if queryset is not None else DomainEvent.objects.filter(
        dispatched_at__isnull=True
    )
    failures = 0
    for event in queryset.order_by("pk").iterator():
        failures += dispatch(event)
    return failures
