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
AREAS = [
    ("customers/", "weiying.customers.urls"),
    ("pipeline/", "weiying.pipeline.urls"),
    ("org/", "weiying.org.urls"),
    ("finance/", "weiying.finance.urls"),
    ("catalog/", "weiying.catalog.urls"),
    ("performance/", "weiying.performance.urls"),
    ("reports/", "weiying.reports.urls"),
    ("m/", "weiying.web.mobile_urls"),
]
area_urlpatterns: list = [path(prefix, include(module)) for prefix, module in AREAS]
