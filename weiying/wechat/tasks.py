"""Background work of the WeChat layer: the inbox worker, its sweeper and drain."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from weiying.wechat import inbox

logger = logging.getLogger(__name__)


@db_task()
def process_inbox_task(pk: int) -> None:
    inbox.process(pk)


@db_periodic_task(crontab(minute="*"))
def drain_inbox_task() -> None:
    """Every minute: re-queue what a dead worker left, then process what is due (retries
    whose backoff ran out, and rows whose queue message was lost)."""
    swept = inbox.sweep()
    counts = inbox.drain()
    if swept or counts:
        logger.info("inbox drain done", extra={"swept": swept, **counts})


@db_periodic_task(crontab(minute="*"))
def query_pay_orders_task() -> None:
    """Every minute: ask Tencent about open WeChat Pay orders whose notification has not
    come (older than 5 minutes, each at most every 5); see weiying.wechat.pay."""
    from weiying.wechat import pay

    pay.query_open_orders()


# --- Push (weiying.wechat.push, .jobs) ---------------------------------------------------------
@db_task()
def send_outbox_task() -> None:
    """Queued after the commit that wrote outbox rows: send them now."""
    from weiying.wechat import push

    push.send_due()


@db_periodic_task(crontab(minute="*"))
def send_outbox_periodic_task() -> None:
    """Every minute: send what is due (postponed rows whose slot came, retries whose backoff
    ran out, rows whose queue message was lost), after returning stalled leases."""
    from weiying.wechat import push

    push.send_due()


@db_periodic_task(crontab(hour="9", minute="0"))
def push_overdue_instalments_task() -> None:
    """Every morning at 09:00 (Asia/Shanghai): a card for each overdue instalment."""
    from weiying.wechat import jobs

    jobs.push_overdue_instalments()


@db_periodic_task(crontab(hour="8", minute="30"))
def push_daily_summaries_task() -> None:
    """Every morning at 08:30 (Asia/Shanghai): the summary card for each rep and manager."""
    from weiying.wechat import jobs

    jobs.push_daily_summaries()


@db_periodic_task(crontab(minute="*/10"))
def poll_transfers_task() -> None:
    """Every 10 minutes: ask WeCom again for departure transfers it has not accepted yet and
    read the result of those waiting (weiying.wechat.departure)."""
    from weiying.wechat import departure
    from weiying.wechat.client import NotConfigured

    try:
        counts = departure.poll_transfers()
    except NotConfigured:
        return
    if any(counts.values()):
        logger.info("transfer poll done", extra=counts)
