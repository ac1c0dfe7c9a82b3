from django.urls import path

from weiying.wechat import callbacks, pay_views, views_channels, views_transfers

app_name = "wechat"

urlpatterns = [
    path("callback/wecom", callbacks.wecom_app, name="callback_wecom"),
    path("callback/wecom-contacts", callbacks.wecom_contacts, name="callback_wecom_contacts"),
    path("callback/oa", callbacks.official_account, name="callback_oa"),
    path("pay/notify", callbacks.pay_notify, name="pay_notify"),
    path("pay/contracts/<int:pk>/collect", pay_views.payorder_new, name="payorder_new"),
    path("pay/orders/<int:pk>", pay_views.payorder_detail, name="payorder_detail"),
    path("pay/orders/<int:pk>/status", pay_views.payorder_status, name="payorder_status"),
    path("pay/orders/<int:pk>/show", pay_views.payorder_show, name="payorder_show"),
    *views_channels.urlpatterns,
    *views_transfers.urlpatterns,
]
