"""The nightly rebuild of the daily facts: whatever an event could not name (a bulk update, a
subscriber that failed and was retried late, a correction made in the database) is put right
from the records once a day, before the morning's summary cards are sent."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from weiying.core import statistics
from weiying.performance import facts


@db_periodic_task(crontab(hour="3", minute="30"))
@lock_task("performance-rebuild")
def rebuild_facts_nightly() -> dict:
    from weiying.reports import rollup

    result = facts.rebuild()
    result["funnel"] = rollup.rebuild()
    statistics.refresh()  # once a night, while it is quiet
    return result
