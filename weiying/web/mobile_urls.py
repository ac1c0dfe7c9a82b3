"""Phone pages (WeUI) for reps inside WeCom; each app adds its own in `<app>/mobile.py`."""

import importlib

app_name = "mobile"
urlpatterns: list = []

for _module in ["weiying.pipeline.mobile_day", "weiying.pipeline.mobile_leads",
                "weiying.pipeline.mobile_contracts", "weiying.customers.mobile",
                "weiying.catalog.mobile_delivery",
                "weiying.performance.mobile", "weiying.performance.mobile_commissions"]:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        continue
    urlpatterns += _mod.urlpatterns
