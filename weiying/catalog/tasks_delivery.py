"""Periodic check of delivery orders past the day promised to the customer."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.catalog.delivery import DeliveryOrder
from weiying.catalog.delivery_selectors import late_q
from weiying.core import events

logger = logging.getLogger(__name__)

BATCH = 2000  # orders announced per run; the next run (an hour on) takes the rest


def announce_late_deliveries() -> dict[str, int]:
    """Announce each order past its promised day and not yet delivered, once (event
    delivery_order.late: the WeChat layer tells the owner and their manager). A conditional
    update marks the order announced, so two workers running the check announce it once."""
    now = timezone.now()
    today = timezone.localdate()
    late = DeliveryOrder.objects.filter(late_q(today))
    total = late.count()
    announced = 0
    fresh = late.filter(late_announced_at__isnull=True).order_by("promised_on", "pk")
    for pk in list(fresh.values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            if not DeliveryOrder.objects.filter(pk=pk, late_announced_at__isnull=True).update(
                    late_announced_at=now):
                continue  # another worker announced it
            order = DeliveryOrder.objects.select_related("contract").get(pk=pk)
            events.emit("delivery_order.late", order, contract_id=order.contract_id,
                        order_id=order.pk, number=order.number,
                        warehouse_id=order.warehouse_id, promised_on=order.promised_on,
                        owner_id=order.owner_id, lines=_lines(order))
            announced += 1
    if total:
        logger.warning("delivery orders past their promised day: %s, %s announced", total,
                       announced, extra={"late": total, "announced": announced})
    else:
        logger.info("no delivery order past its promised day")
    return {"late": total, "announced": announced}


def _lines(order: DeliveryOrder) -> list[dict[str, object]]:
    from weiying.catalog.delivery_services import event_lines

    return event_lines(order)


@db_periodic_task(crontab(minute="15"))
def delivery_late_check() -> None:
    announce_late_deliveries()
