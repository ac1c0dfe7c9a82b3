import importlib

from django.urls import include, path

from weiying.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("healthz", views.healthz, name="healthz"),
]

# Each app's HTML pages live in its own urls.py under its own top-level namespace
# ("pipeline:…", "customers:…", "mobile:…"): weiying.conf.urls mounts `area_urlpatterns` at
# the root, outside the "web" namespace of this module.
area_urlpatterns: list = []
for _prefix, _module in [
    ("customers/", "weiying.customers.urls"),
    ("pipeline/", "weiying.pipeline.urls"),
    ("org/", "weiying.org.urls"),
    ("finance/", "weiying.finance.urls"),
    ("catalog/", "weiying.catalog.urls"),
    ("performance/", "weiying.performance.urls"),
    ("reports/", "weiying.reports.urls"),
]:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        continue
    area_urlpatterns.append(path(_prefix, include(_module)))

area_urlpatterns.append(path("m/", include("weiying.web.mobile_urls")))
