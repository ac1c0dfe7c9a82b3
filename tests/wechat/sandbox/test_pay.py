from __future__ import annotations

import json

import pytest

from weiying.wechat import crypto
from weiying.wechat.sandbox import SandboxConfig

from .conftest import NOW

CONFIG = SandboxConfig()
AUTH = {"Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{CONFIG.pay_mch_id}",'
                         'nonce_str="n",signature="s",timestamp="1",serial_no="M1"'}


def _order(client, out_trade_no="WY20260528001", total=128000, **extra):
    body = {"appid": CONFIG.pay_app_id, "mchid": CONFIG.pay_mch_id,
            "description": "年度服务费", "out_trade_no": out_trade_no,
            "notify_url": "http://app/wechat/pay/notify", "amount": {"total": total},
            "time_expire": "2026-06-30T18:00:00+08:00", **extra}
    return client.post("/pay/v3/pay/transactions/native", json=body, headers=AUTH)


def _query(client, out_trade_no="WY20260528001"):
    return client.get(f"/pay/v3/pay/transactions/out-trade-no/{out_trade_no}",
                      params={"mchid": CONFIG.pay_mch_id}, headers=AUTH)


def _verifier(platform_keys):
    return crypto.PayVerifier({CONFIG.pay_public_key_id: platform_keys[1]})


def _verify(verifier, headers, body):
    verifier.verify(serial=headers["Wechatpay-Serial"], timestamp=headers["Wechatpay-Timestamp"],
                    nonce=headers["Wechatpay-Nonce"], body=body,
                    signature=headers["Wechatpay-Signature"], now=NOW)


def test_a_native_order_gets_a_code_url(client):
    response = _order(client)

    assert response.status_code == 200
    assert response.json()["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")


def test_the_same_order_twice_gets_the_same_code_url_a_changed_one_is_refused(client):
    first = _order(client).json()
    same = _order(client).json()
    changed = _order(client, total=99)

    assert same == first
    assert changed.status_code == 400
    assert changed.json()["code"] == "INVALID_REQUEST"
    assert "商户订单号重复" in changed.json()["message"]


def test_orders_are_checked(client):
    assert _order(client, appid="wxother").json()["code"] == "APPID_MCHID_NOT_MATCH"
    assert _order(client, mchid="1234").json()["code"] == "MCH_NOT_EXISTS"
    assert _order(client, amount={"total": 0}).json()["code"] == "PARAM_ERROR"
    assert _order(client, out_trade_no="short").json()["code"] == "PARAM_ERROR"
    unauthenticated = client.post("/pay/v3/pay/transactions/native", json={})
    assert unauthenticated.status_code == 401


def test_query_answers_notpay_then_success_signed_by_the_platform(client, platform_keys):
    _order(client)
    before = _query(client)

    client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY20260528001",
                                                   "openid": "oPAYER"})
    after = _query(client)

    assert before.json()["trade_state"] == "NOTPAY"
    assert "transaction_id" not in before.json()
    paid = after.json()
    assert paid["trade_state"] == "SUCCESS"
    assert paid["transaction_id"].startswith("4200") and len(paid["transaction_id"]) == 28
    assert paid["amount"] == {"total": 128000, "currency": "CNY", "payer_currency": "CNY",
                              "payer_total": 128000}
    assert paid["payer"] == {"openid": "oPAYER"}
    assert paid["success_time"].endswith("+08:00")
    _verify(_verifier(platform_keys), after.headers, after.content)


def test_the_notification_verifies_and_decrypts_to_the_order(client, app_posts, platform_keys):
    _order(client)

    paid = client.post("/sandbox/api/simulate/pay",
                       json={"out_trade_no": "WY20260528001"}).json()

    [posted] = app_posts.posts
    assert posted.url == "http://app/wechat/pay/notify"
    assert posted.headers["Wechatpay-Serial"] == CONFIG.pay_public_key_id
    _verify(_verifier(platform_keys), posted.headers, posted.body)
    envelope = json.loads(posted.body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource_type"] == "encrypt-resource"
    resource = envelope["resource"]
    assert (resource["algorithm"], resource["associated_data"], resource["original_type"]) == (
        "AEAD_AES_256_GCM", "transaction", "transaction")
    plain = json.loads(crypto.pay_decrypt_resource(
        CONFIG.pay_apiv3_key, nonce=resource["nonce"],
        associated_data=resource["associated_data"], ciphertext=resource["ciphertext"]))
    assert plain["out_trade_no"] == "WY20260528001"
    assert plain["transaction_id"] == paid["transaction_id"]
    assert (plain["appid"], plain["mchid"]) == (CONFIG.pay_app_id, CONFIG.pay_mch_id)
    assert (plain["trade_type"], plain["trade_state"]) == ("NATIVE", "SUCCESS")
    assert plain["amount"]["total"] == plain["amount"]["payer_total"] == 128000
    assert plain["amount"]["currency"] == "CNY"
    assert plain["payer"]["openid"]


def test_a_paid_order_cannot_be_paid_closed_or_reordered(client):
    _order(client)
    client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY20260528001"})

    again = client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY20260528001"})
    close = client.post("/pay/v3/pay/transactions/out-trade-no/WY20260528001/close",
                        json={"mchid": CONFIG.pay_mch_id}, headers=AUTH)

    assert again.status_code == 409
    assert close.status_code == 400 and close.json()["code"] == "ORDERPAID"
    assert _order(client).json()["code"] == "ORDERPAID"


def test_closing_an_open_order(client):
    _order(client)

    closed = client.post("/pay/v3/pay/transactions/out-trade-no/WY20260528001/close",
                         json={"mchid": CONFIG.pay_mch_id}, headers=AUTH)

    assert closed.status_code == 204
    assert _query(client).json()["trade_state"] == "CLOSED"
    assert client.post("/sandbox/api/simulate/pay",
                       json={"out_trade_no": "WY20260528001"}).status_code == 409
    missing = _query(client, "WYNOSUCHORDER")
    assert missing.status_code == 404 and missing.json()["code"] == "ORDER_NOT_EXIST"


def test_an_expired_order_cannot_be_paid(client, clock):
    _order(client, time_expire="2026-05-28T00:00:00+08:00")

    response = client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY20260528001"})

    assert response.status_code == 409 and response.json()["code"] == "expired"


def _signed_headers(private_pem, method, url, body, timestamp):
    message = f"{method}\n{url}\n{timestamp}\nnonce1\n{body}\n".encode()
    signature = crypto.pay_sign(private_pem, message)
    return {"Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{CONFIG.pay_mch_id}",'
                             f'nonce_str="nonce1",signature="{signature}",'
                             f'timestamp="{timestamp}",serial_no="M1"',
            "Content-Type": "application/json"}


def test_the_merchant_signature_is_verified_when_its_key_is_known(client, state):
    merchant_private, merchant_public = crypto.generate_test_keypair()
    state.config.pay_merchant_public_key = merchant_public.decode()
    url = "/v3/pay/transactions/out-trade-no/WY1234567?mchid=" + CONFIG.pay_mch_id

    good = client.get("/pay" + url, headers=_signed_headers(
        merchant_private, "GET", url, "", int(NOW)))
    bad = client.get("/pay" + url, headers=_signed_headers(
        merchant_private, "GET", url.replace("1234567", "7654321"), "", int(NOW)))
    stale = client.get("/pay" + url, headers=_signed_headers(
        merchant_private, "GET", url, "", int(NOW) - 600))

    assert good.status_code == 404  # authenticated; the order does not exist
    assert bad.status_code == 401 and bad.json()["code"] == "SIGN_ERROR"
    assert stale.status_code == 401


@pytest.mark.parametrize("sign_with", ["public_key", "certificate"])
def test_during_the_migration_either_key_signs(client, app_posts, state, sign_with):
    state.config.pay_certificate_serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    state.config.pay_sign_with = sign_with
    keys = client.get("/sandbox/api/pay/keys").json()
    _order(client)

    client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY20260528001"})

    posted = app_posts.posts[0]
    verifier = crypto.PayVerifier({k: v.encode() for k, v in keys["keys"].items()})
    assert set(keys["keys"]) == {CONFIG.pay_public_key_id, state.config.pay_certificate_serial}
    assert posted.headers["Wechatpay-Serial"] == keys["signing_serial"]
    assert keys["signing_serial"] == (CONFIG.pay_public_key_id if sign_with == "public_key"
                                      else state.config.pay_certificate_serial)
    _verify(verifier, posted.headers, posted.body)
