"""The performance layer's background tasks. The Huey consumer imports each app's `tasks`
module; every area keeps its own tasks in `tasks_<area>.py`, gathered here."""

from weiying.performance import tasks_commissions, tasks_facts, tasks_targets  # noqa: F401
