from django.urls import path

from weiying.wechat import (
    callbacks,
    jssdk,
    login,
    pay_views,
    views_channels,
    views_outbox,
    views_transfers,
)

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
    path("login/", login.login, name="login"),
    path("login/qr/", login.login_qr, name="login_qr"),
    path("login/callback/", login.login_callback, name="login_callback"),
    path("jssdk/config/", jssdk.jssdk_config, name="jssdk_config"),
    path("outbox/", views_outbox.outbox, name="outbox"),
    path("outbox/retry/", views_outbox.outbox_retry, name="outbox_retry"),
    *views_channels.urlpatterns,
    *views_transfers.urlpatterns,
]
