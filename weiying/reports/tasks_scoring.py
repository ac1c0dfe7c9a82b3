"""The scoring jobs: retrain every model weekly (Sunday night) and rescore nightly with the
stored models (weiying.reports.scoring). `weiying train-scores` runs the retraining by hand."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from weiying.reports import scoring

logger = logging.getLogger(__name__)


@db_task()
def retrain_scores_task() -> None:
    scoring.train_all()


@db_periodic_task(crontab(day_of_week="0", hour="3", minute="10"))
def weekly_retrain_scores() -> None:
    scoring.train_all()


@db_periodic_task(crontab(hour="2", minute="40"))
def nightly_rescore() -> None:
    counts = scoring.rescore_all()
    logger.info("scores rewritten", extra={"counts": counts})
