"""The analysis desk (/reports/). Each area keeps its views and routes in its own module
(`views_<area>.py` exposing `urlpatterns`)."""

from django.urls import path

from weiying.reports import (
    views,
    views_activity,
    views_channels,
    views_customers,
    views_dashboards,
    views_forecast,
    views_funnel,
    views_schedules,
    views_scoring,
)

app_name = "reports"

urlpatterns = [path("", views.index, name="index")]
for _area in (views_funnel, views_forecast, views_activity, views_channels, views_customers,
              views_scoring, views_dashboards, views_schedules):
    urlpatterns += _area.urlpatterns
