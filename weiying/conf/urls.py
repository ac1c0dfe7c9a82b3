from django.contrib import admin
from django.urls import include, path

from weiying.api.base import api
from weiying.web.urls import area_urlpatterns

urlpatterns = [
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("wechat/", include("weiying.wechat.urls")),
    path("", include("weiying.web.urls")),
    *area_urlpatterns,
]
