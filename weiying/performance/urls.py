"""Performance desk routes (namespace "performance"); the commission pages, when present, come
from weiying.performance.urls_commissions under commissions/."""

import importlib

from django.urls import include, path

from weiying.performance import views

app_name = "performance"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("targets/", views.target_list, name="targets"),
    path("targets/set/", views.target_set, name="target_set"),
    path("targets/<int:pk>/decompose/", views.target_decompose, name="target_decompose"),
    path("targets/import/", views.target_import, name="target_import"),
    path("kpis/", views.kpi_list, name="kpis"),
]

try:
    _commissions = importlib.import_module("weiying.performance.urls_commissions")
except ModuleNotFoundError as exc:
    if exc.name != "weiying.performance.urls_commissions":
        raise
else:
    urlpatterns.append(path("commissions/", include(_commissions.urlpatterns)))
