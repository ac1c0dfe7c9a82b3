"""HTML pages of the progress layer; each area keeps its own `urlpatterns` in views/<area>.py."""

import importlib

app_name = "pipeline"
urlpatterns: list = []

for _area in ["leads", "opportunities", "followups", "contracts", "tickets", "aftersale",
              "imports"]:
    _module = f"weiying.pipeline.views.{_area}"
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        continue
    urlpatterns += _mod.urlpatterns
