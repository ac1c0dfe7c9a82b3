import logging

import pytest
from django.urls import reverse

from tests.wechat.conftest import AES_KEY, PAY_APIV3_KEY
from weiying.wechat.models import WeChatSettings

pytestmark = pytest.mark.django_db

SECRETS = ["app-secret", "contact-secret", "oa-secret", AES_KEY, PAY_APIV3_KEY]


def test_the_admin_page_shows_that_secrets_are_set_but_never_their_values(wechat, admin_client):
    row = WeChatSettings.objects.get()

    page = admin_client.get(reverse("admin:wechat_wechatsettings_change", args=[row.pk]))

    body = page.content.decode()
    assert page.status_code == 200
    for secret in SECRETS:
        assert secret not in body
    assert "BEGIN PRIVATE KEY" not in body
    assert body.count("…") >= 5  # the fingerprints of the stored secrets


def test_secrets_are_stored_encrypted(wechat):
    row = WeChatSettings.objects.values().get()

    stored = " ".join(str(v) for v in row.values())
    for secret in SECRETS:
        assert secret not in stored


def test_saving_in_the_admin_keeps_a_secret_left_empty(wechat, admin_client):
    row = WeChatSettings.objects.get()
    url = reverse("admin:wechat_wechatsettings_change", args=[row.pk])
    form = {"corp_id": "wwchanged", "agent_id": "1000003", "oa_app_id": row.oa_app_id,
            "pay_mch_id": row.pay_mch_id, "pay_app_id": row.pay_app_id,
            "pay_cert_serial": row.pay_cert_serial,
            "pay_notify_url": "https://crm.example.com/wechat/pay/notify",
            "pay_verify_keys": "{}", "app_secret": ""}

    response = admin_client.post(url, form)

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.corp_id, row.secret("app_secret")) == ("wwchanged", "app-secret")


def test_a_refused_callback_logs_no_secret(client, wechat, caplog):
    from tests.wechat.conftest import post_wecom, wecom_xml

    with caplog.at_level(logging.DEBUG):
        post_wecom(client, wecom_xml(MsgType="text", MsgId="1"), signature="0" * 40)

    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in SECRETS + ["weiyingToken"]:
        assert secret not in logged
