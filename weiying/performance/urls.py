"""Performance desk routes (namespace "performance"); the commission pages come from
weiying.performance.urls_commissions under commissions/."""

from django.urls import include, path

from weiying.performance import urls_commissions, views

app_name = "performance"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("targets/", views.target_list, name="targets"),
    path("targets/set/", views.target_set, name="target_set"),
    path("targets/<int:pk>/decompose/", views.target_decompose, name="target_decompose"),
    path("targets/import/", views.target_import, name="target_import"),
    path("kpis/", views.kpi_list, name="kpis"),
    path("commissions/", include(urls_commissions.urlpatterns)),
]
