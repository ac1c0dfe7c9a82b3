from django.urls import path

from weiying.wechat import callbacks

app_name = "wechat"

urlpatterns = [
    path("callback/wecom", callbacks.wecom_app, name="callback_wecom"),
    path("callback/wecom-contacts", callbacks.wecom_contacts, name="callback_wecom_contacts"),
    path("callback/oa", callbacks.official_account, name="callback_oa"),
    path("pay/notify", callbacks.pay_notify, name="pay_notify"),
]
