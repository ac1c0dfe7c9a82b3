"""The analysis layer's background jobs. The Huey consumer imports each app's `tasks` module;
every area keeps its own jobs in `tasks_<area>.py`, gathered here."""

from weiying.reports import tasks_schedules, tasks_scoring  # noqa: F401
