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


# --- Control: closing, expiry, unpaid states ----------------------------------------------

def _control(client, path, body=None):
    return client.post(f"/sandbox/api{path}", json=body or {})


def test_the_control_api_closes_an_order_as_tencent_would(client):
    _order(client)

    closed = _control(client, "/orders/WY20260528001/close")
    again = _control(client, "/orders/WY20260528001/close")
    paying = _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"})
    unknown = _control(client, "/orders/WYNOSUCH01/close")

    assert closed.status_code == again.status_code == 200
    assert (closed.json()["trade_state"], closed.json()["trade_state_desc"]) == (
        "CLOSED", "订单已关闭")
    assert _query(client).json()["trade_state"] == "CLOSED"
    assert paying.status_code == 409 and paying.json()["code"] == "not_payable"
    assert _order(client).json()["code"] == "ORDER_CLOSED"
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_order"


def test_a_paid_order_cannot_be_closed_by_the_control_api(client):
    _order(client)
    _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"})

    response = _control(client, "/orders/WY20260528001/close")

    assert response.status_code == 409 and response.json()["code"] == "already_paid"
    assert _query(client).json()["trade_state"] == "SUCCESS"


def test_an_order_is_closed_once_the_clock_passes_its_time_expire(client, clock):
    # NOW is 2026-05-29 04:26:40 Beijing time
    _order(client, time_expire="2026-05-29T04:36:40+08:00")  # ten minutes on
    _order(client, out_trade_no="WY20260528002", time_expire="2026-05-29T04:36:40+08:00")

    before = _query(client).json()
    client.post("/sandbox/api/clock", json={"advance_seconds": 600})
    at_the_second = _query(client).json()
    client.post("/sandbox/api/clock", json={"advance_seconds": 1})
    after = _query(client).json()
    paying = _control(client, "/simulate/pay", {"out_trade_no": "WY20260528002"})
    listed = client.get("/sandbox/api/orders").json()["orders"]

    assert before["trade_state"] == at_the_second["trade_state"] == "NOTPAY"
    assert (after["trade_state"], after["trade_state_desc"]) == ("CLOSED", "订单已关闭")
    assert paying.status_code == 409 and paying.json()["code"] == "expired"
    assert [o["trade_state"] for o in listed] == ["CLOSED", "CLOSED"]
    assert _order(client).json()["code"] == "ORDER_CLOSED"


@pytest.mark.parametrize(("trade_state", "desc"), [
    ("USERPAYING", "用户支付中"), ("PAYERROR", "支付失败"), ("REVOKED", "已撤销"),
    ("NOTPAY", "订单未支付")])
def test_a_query_answers_the_state_the_control_api_set(client, trade_state, desc):
    _order(client)

    set_ = _control(client, "/orders/WY20260528001/state", {"trade_state": trade_state})
    answer = _query(client).json()

    assert set_.status_code == 200
    assert (answer["trade_state"], answer["trade_state_desc"]) == (trade_state, desc)
    assert "transaction_id" not in answer


def test_a_payment_error_can_say_why_and_the_customer_can_still_pay(client):
    _order(client)
    _control(client, "/orders/WY20260528001/state",
             {"trade_state": "PAYERROR", "trade_state_desc": "银行卡余额不足"})

    failed = _query(client).json()
    paid = _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"})

    assert (failed["trade_state"], failed["trade_state_desc"]) == ("PAYERROR", "银行卡余额不足")
    assert paid.status_code == 200
    assert (_query(client).json()["trade_state_desc"]) == "支付成功"


def test_only_an_open_order_takes_another_state(client):
    _order(client)
    bad = _control(client, "/orders/WY20260528001/state", {"trade_state": "SUCCESS"})
    _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"})
    paid = _control(client, "/orders/WY20260528001/state", {"trade_state": "PAYERROR"})

    assert bad.status_code == 400 and bad.json()["code"] == "bad_trade_state"
    assert paid.status_code == 409 and paid.json()["code"] == "not_open"


# --- Refunds --------------------------------------------------------------------------------

def _decrypt(posted):
    envelope = json.loads(posted.body)
    resource = envelope["resource"]
    plain = json.loads(crypto.pay_decrypt_resource(
        CONFIG.pay_apiv3_key, nonce=resource["nonce"],
        associated_data=resource["associated_data"], ciphertext=resource["ciphertext"]))
    return envelope, plain


def test_a_refund_posts_a_signed_encrypted_refund_success(client, app_posts, platform_keys):
    _order(client)
    paid = _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"}).json()

    refund = _control(client, "/simulate/refund",
                      {"out_trade_no": "WY20260528001", "amount": 28000}).json()

    posted = app_posts.posts[-1]
    assert posted.url == "http://app/wechat/pay/notify"
    _verify(_verifier(platform_keys), posted.headers, posted.body)
    envelope, plain = _decrypt(posted)
    assert (envelope["event_type"], envelope["summary"]) == ("REFUND.SUCCESS", "退款成功")
    assert (envelope["resource"]["original_type"], envelope["resource"]["associated_data"]) == (
        "refund", "refund")
    assert plain == {
        "mchid": CONFIG.pay_mch_id, "out_trade_no": "WY20260528001",
        "transaction_id": paid["transaction_id"], "out_refund_no": refund["out_refund_no"],
        "refund_id": refund["refund_id"], "refund_status": "SUCCESS",
        "success_time": "2026-05-29T04:26:40+08:00", "user_received_account": "支付用户零钱",
        "amount": {"total": 128000, "refund": 28000, "payer_total": 128000,
                   "payer_refund": 28000}}
    assert refund["refund_id"].startswith("50") and len(refund["refund_id"]) == 30
    assert refund["notified"] is True
    query = _query(client).json()
    assert (query["trade_state"], query["trade_state_desc"]) == ("REFUND", "转入退款")
    assert query["transaction_id"] == paid["transaction_id"]


def test_refunds_add_up_to_the_order_and_no_further(client, app_posts):
    _order(client)
    _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"})

    first = _control(client, "/simulate/refund",
                     {"out_trade_no": "WY20260528001", "amount": 100000,
                      "out_refund_no": "RFMERCHANT1"}).json()
    too_much = _control(client, "/simulate/refund",
                        {"out_trade_no": "WY20260528001", "amount": 28001})
    rest = _control(client, "/simulate/refund", {"out_trade_no": "WY20260528001"}).json()
    nothing_left = _control(client, "/simulate/refund", {"out_trade_no": "WY20260528001"})
    listed = client.get("/sandbox/api/orders").json()["orders"][0]

    assert first["out_refund_no"] == "RFMERCHANT1"
    assert too_much.status_code == 400 and too_much.json()["code"] == "bad_amount"
    assert (rest["refund"], rest["refunded"]) == (28000, 128000)
    assert nothing_left.status_code == 409 and nothing_left.json()["code"] == "fully_refunded"
    assert [_decrypt(p)[1]["amount"]["refund"] for p in app_posts.posts[1:]] == [100000, 28000]
    assert listed["refunded"] == 128000 and len(listed["refunds"]) == 2


def test_only_a_paid_order_is_refunded(client):
    _order(client)

    unpaid = _control(client, "/simulate/refund", {"out_trade_no": "WY20260528001"})
    fraction = _control(client, "/simulate/refund",
                        {"out_trade_no": "WY20260528001", "amount": 1.5})

    assert unpaid.status_code == 409 and unpaid.json()["code"] == "not_paid"
    assert fraction.status_code == 400 and fraction.json()["code"] == "bad_field"


def test_a_dropped_refund_notification_is_not_posted(client, app_posts):
    _order(client)
    _control(client, "/simulate/pay", {"out_trade_no": "WY20260528001"})
    client.post("/sandbox/api/faults", json={"drop_pay_notifications": 1})

    refund = _control(client, "/simulate/refund", {"out_trade_no": "WY20260528001"}).json()

    assert refund["notified"] is False
    assert len(app_posts.posts) == 1
