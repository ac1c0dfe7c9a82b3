from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.customers.services import recycle_customers

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(hour="2", minute="0"))
def recycle_customers_task() -> dict[str, int]:
    """Nightly at 02:00 on the queue's clock: neglected customers go back to the pool."""
    logger.info("customer recycle starting")
    return recycle_customers()
