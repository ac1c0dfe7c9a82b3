"""The performance layer's background tasks. The Huey consumer imports each app's `tasks`
module; every area keeps its own tasks in `tasks_<area>.py`, gathered here."""

import importlib

for _area in ["facts", "targets", "commissions"]:
    _module = f"weiying.performance.tasks_{_area}"
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
