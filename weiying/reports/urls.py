"""The analysis desk (/reports/). Each area keeps its views and routes in its own module
(`views_<area>.py` exposing `urlpatterns`), so the areas grow apart without touching here."""

import importlib

from django.urls import path

from weiying.reports import views

app_name = "reports"

urlpatterns = [path("", views.index, name="index")]

for _module in ["weiying.reports.views_funnel", "weiying.reports.views_forecast",
                "weiying.reports.views_activity", "weiying.reports.views_channels",
                "weiying.reports.views_customers", "weiying.reports.views_scoring",
                "weiying.reports.views_dashboards", "weiying.reports.views_schedules"]:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        continue
    urlpatterns += _mod.urlpatterns
