"""The analysis layer's background jobs. The Huey consumer imports each app's `tasks` module;
every area keeps its own jobs in `tasks_<area>.py`, gathered here."""

import importlib

for _area in ["scoring", "schedules"]:
    _module = f"weiying.reports.tasks_{_area}"
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
