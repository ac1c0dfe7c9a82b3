import json
import time
import urllib.parse
import uuid

import pytest

from tests.wechat.conftest import (
    AES_KEY,
    CORP_ID,
    OA_AES_KEY,
    OA_APP_ID,
    OA_TOKEN,
    PAY_APIV3_KEY,
    PAY_PUBLIC_KEY_ID,
    TOKEN,
    post_wecom,
    wecom_xml,
)
from weiying.wechat import crypto
from weiying.wechat.models import InboxMessage, SecurityEvent

pytestmark = pytest.mark.django_db

ADD = dict(ToUserName=CORP_ID, FromUserName="sys", CreateTime="1700000000", MsgType="event",
           Event="change_external_contact", ChangeType="add_external_contact",
           UserID="zhangsan", ExternalUserID="wmEXT001", State="expo2026", WelcomeCode="WC1")


def test_wecom_url_check_echoes_the_decrypted_echostr(client, wechat):
    box = crypto.CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    ts, nonce = str(int(time.time())), "123456"
    echostr, sig = box.encrypt(b"4815162342", timestamp=ts, nonce=nonce)

    response = client.get("/wechat/callback/wecom", {
        "msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr,
    })

    assert response.status_code == 200
    assert response.content == b"4815162342"


def test_a_callback_is_stored_then_answered_with_an_empty_200(client, wechat):
    response = post_wecom(client, wecom_xml(**ADD))

    assert response.status_code == 200
    assert response.content == b""
    row = InboxMessage.objects.get()
    assert row.source == "wecom"
    assert row.kind == "event:change_external_contact:add_external_contact"
    assert row.dedup_key.startswith("sha256:")
    assert "wmEXT001" in row.payload
    assert "wmEXT001" not in row.payload_enc  # encrypted at rest


def test_the_same_event_delivered_four_times_is_one_row_with_four_deliveries(client, wechat):
    for _ in range(4):
        assert post_wecom(client, wecom_xml(**ADD)).status_code == 200

    row = InboxMessage.objects.get()
    assert row.deliveries == 4


def test_two_distinct_events_with_the_same_sender_and_second_are_both_kept(client, wechat):
    post_wecom(client, wecom_xml(**ADD))
    post_wecom(client, wecom_xml(**{**ADD, "ExternalUserID": "wmEXT002"}))

    assert InboxMessage.objects.count() == 2


def test_messages_deduplicate_on_their_msgid(client, wechat):
    text = dict(ToUserName=CORP_ID, FromUserName="zhangsan", CreateTime="1700000000",
                MsgType="text", Content="你好", MsgId="7000000001", AgentID="1000002")
    post_wecom(client, wecom_xml(**text))
    post_wecom(client, wecom_xml(**{**text, "CreateTime": "1700000005"}))

    row = InboxMessage.objects.get()
    assert (row.dedup_key, row.kind, row.deliveries) == ("msg:7000000001", "msg:text", 2)


@pytest.mark.parametrize("case", ["bad_signature", "stale", "future", "other_corp"])
def test_forged_or_stale_callbacks_change_nothing_and_are_logged(client, wechat, case):
    kwargs = {
        "bad_signature": {"signature": "0" * 40},
        "stale": {"timestamp": str(int(time.time()) - 400)},
        "future": {"timestamp": str(int(time.time()) + 400)},
        "other_corp": {"receive_id": "wwSOMEONEELSE"},
    }[case]

    response = post_wecom(client, wecom_xml(**ADD), **kwargs)

    assert response.status_code == 403
    assert InboxMessage.objects.count() == 0
    reason = SecurityEvent.objects.get().reason
    assert reason == {"bad_signature": "bad_signature", "stale": "stale_timestamp",
                      "future": "stale_timestamp", "other_corp": "bad_receive_id"}[case]


def test_an_oversized_body_is_refused_before_it_is_read(client, wechat, settings):
    settings.WECHAT = {**settings.WECHAT, "CALLBACK_MAX_BYTES": 2048}

    response = post_wecom(client, wecom_xml(**{**ADD, "State": "x" * 4000}))

    assert response.status_code == 413
    assert InboxMessage.objects.count() == 0
    assert SecurityEvent.objects.get().reason == "too_large"


def test_an_xml_bomb_inside_a_valid_envelope_is_refused(client, wechat):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<xml><MsgType>&lol2;</MsgType></xml>")

    response = post_wecom(client, bomb)

    assert response.status_code == 400
    assert InboxMessage.objects.count() == 0
    assert SecurityEvent.objects.get().reason == "bad_xml"


def test_an_unconfigured_installation_answers_503_and_stores_nothing(client, db):
    response = post_wecom(client, wecom_xml(**ADD))

    assert response.status_code == 503
    assert InboxMessage.objects.count() == 0


def test_the_contacts_callback_stores_under_its_own_source(client, wechat):
    change = dict(ToUserName=CORP_ID, FromUserName="sys", CreateTime="1700000000",
                  MsgType="event", Event="change_contact", ChangeType="update_user",
                  UserID="zhangsan", Position="销售经理")

    post_wecom(client, wecom_xml(**change), path="/wechat/callback/wecom-contacts")

    row = InboxMessage.objects.get()
    assert (row.source, row.kind) == ("wecom_contacts", "event:change_contact:update_user")


# --- Official Account ---------------------------------------------------------------------
def _oa_query(ts: str, nonce: str, **extra: str) -> str:
    signature = crypto.signature(OA_TOKEN, ts, nonce)
    return urllib.parse.urlencode({"signature": signature, "timestamp": ts, "nonce": nonce,
                                   **extra})


def test_oa_url_check_returns_echostr_as_it_came(client, wechat):
    ts = str(int(time.time()))

    response = client.get("/wechat/callback/oa?" + _oa_query(ts, "99", echostr="abc+/=1"))

    assert response.status_code == 200
    assert response.content == b"abc+/=1"


def test_oa_safe_mode_message_is_stored_and_answered_success(client, wechat):
    box = crypto.CallbackCrypto(OA_TOKEN, OA_AES_KEY, OA_APP_ID)
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:8]
    subscribe = wecom_xml(ToUserName="gh_abc", FromUserName="oOPENID1", CreateTime=ts,
                          MsgType="event", Event="subscribe", EventKey="qrscene_expo")
    body = box.encrypted_envelope(subscribe, timestamp=ts, nonce=nonce)
    msg_signature = box.msg_signature(ts, nonce, crypto.envelope_encrypt(body))

    response = client.post(
        "/wechat/callback/oa?" + _oa_query(ts, nonce, encrypt_type="aes",
                                           msg_signature=msg_signature),
        body, content_type="text/xml")

    assert response.status_code == 200
    assert response.content == b"success"
    assert InboxMessage.objects.get().kind == "event:subscribe"


def test_oa_plain_message_with_a_wrong_signature_is_refused(client, wechat):
    ts = str(int(time.time()))
    query = urllib.parse.urlencode({"signature": "f" * 40, "timestamp": ts, "nonce": "1"})

    response = client.post("/wechat/callback/oa?" + query, wecom_xml(MsgType="text"),
                           content_type="text/xml")

    assert response.status_code == 403
    assert InboxMessage.objects.count() == 0


# --- WeChat Pay ---------------------------------------------------------------------------
def _pay_body(out_trade_no: str = "WY2026120400001", total: int = 80001,
              notification_id: str = "EV-0001") -> bytes:
    plaintext = json.dumps({
        "appid": OA_APP_ID, "mchid": "1900000109", "out_trade_no": out_trade_no,
        "transaction_id": "4200000000202612040000000001", "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "success_time": "2026-12-04T10:00:00+08:00",
        "payer": {"openid": "oPAYER"}, "amount": {"total": total, "currency": "CNY"},
    }).encode()
    nonce = "nonce12chars"
    return json.dumps({
        "id": notification_id, "create_time": "2026-12-04T10:00:01+08:00",
        "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
        "resource": {
            "algorithm": "AEAD_AES_256_GCM", "associated_data": "transaction", "nonce": nonce,
            "original_type": "transaction",
            "ciphertext": crypto.pay_encrypt_resource(
                PAY_APIV3_KEY, nonce=nonce, associated_data="transaction", plaintext=plaintext),
        },
    }).encode()


def _pay_headers(body: bytes, private_pem: bytes, *, serial: str = PAY_PUBLIC_KEY_ID,
                 timestamp: str | None = None, signature: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    nonce = uuid.uuid4().hex
    sig = signature or crypto.pay_sign(private_pem, crypto.pay_message(ts, nonce, body))
    return {"HTTP_WECHATPAY_SERIAL": serial, "HTTP_WECHATPAY_TIMESTAMP": ts,
            "HTTP_WECHATPAY_NONCE": nonce, "HTTP_WECHATPAY_SIGNATURE": sig}


def test_a_signed_pay_notification_is_stored_decrypted_and_answered_204(client, wechat,
                                                                        pay_keys):
    body = _pay_body()

    response = client.post("/wechat/pay/notify", body, content_type="application/json",
                           **_pay_headers(body, pay_keys["platform_private"]))

    assert response.status_code == 204
    row = InboxMessage.objects.get()
    assert (row.source, row.kind, row.dedup_key) == ("pay", "pay:TRANSACTION.SUCCESS",
                                                     "id:EV-0001")
    assert json.loads(row.payload)["resource"]["amount"]["total"] == 80001


def test_pay_accepts_the_certificate_serial_too_during_a_migration_week(client, wechat,
                                                                       pay_keys):
    body = _pay_body()

    response = client.post(
        "/wechat/pay/notify", body, content_type="application/json",
        **_pay_headers(body, pay_keys["platform_private"],
                       serial=pay_keys["cert_serial"].decode()))

    assert response.status_code == 204


@pytest.mark.parametrize("case", ["forged", "probe", "stale", "unknown_serial", "tampered"])
def test_forged_probe_stale_and_tampered_pay_notifications_store_nothing(
        client, wechat, pay_keys, case):
    body = _pay_body()
    headers = {
        "forged": lambda: _pay_headers(body, pay_keys["merchant_private"]),
        "probe": lambda: _pay_headers(body, pay_keys["platform_private"],
                                      signature="WECHATPAY/SIGNTEST/abc"),
        "stale": lambda: _pay_headers(body, pay_keys["platform_private"],
                                      timestamp=str(int(time.time()) - 600)),
        "unknown_serial": lambda: _pay_headers(body, pay_keys["platform_private"],
                                               serial="PUB_KEY_ID_OTHER"),
        "tampered": lambda: _pay_headers(body, pay_keys["platform_private"]),
    }[case]()
    sent = body.replace(b"EV-0001", b"EV-9999") if case == "tampered" else body

    response = client.post("/wechat/pay/notify", sent, content_type="application/json",
                           **headers)

    assert response.status_code == 401
    assert response.json()["code"] == "FAIL"
    assert InboxMessage.objects.count() == 0
    assert SecurityEvent.objects.get().reason == {
        "forged": "bad_signature", "probe": "probe_signature", "stale": "stale_timestamp",
        "unknown_serial": "unknown_serial", "tampered": "bad_signature"}[case]
