from __future__ import annotations

import json
import threading
import time

import pytest

from weiying.wechat import crypto
from weiying.wechat.sandbox import SandboxConfig

from .conftest import NOW, open_callback, seed_company, wecom_token

CONFIG = SandboxConfig()
PAY_AUTH = {"Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{CONFIG.pay_mch_id}"'}


def _arm(client, **faults):
    response = client.post("/sandbox/api/faults", json=faults)
    assert response.status_code == 200, response.text
    return response.json()["faults"]


def _add(client, name="张三", userid="rep_a"):
    return client.post("/sandbox/api/simulate/add_contact", json={"name": name,
                                                                  "userid": userid}).json()


def _users(client, token):
    return client.get("/wecom/cgi-bin/user/get",
                      params={"access_token": token, "userid": "rep_a"}).json()


def _paid_order(client, out_trade_no="WY0000009"):
    client.post("/pay/v3/pay/transactions/native", headers=PAY_AUTH, json={
        "appid": CONFIG.pay_app_id, "mchid": CONFIG.pay_mch_id, "description": "x",
        "out_trade_no": out_trade_no, "notify_url": "http://app/n", "amount": {"total": 500}})
    return client.post("/sandbox/api/simulate/pay", json={"out_trade_no": out_trade_no}).json()


@pytest.mark.parametrize(("fault", "errcode"), [("invalid_token", 40014),
                                                 ("expired_token", 42001),
                                                 ("rate_limit", 45009)])
def test_the_next_n_api_calls_answer_the_fault(client, fault, errcode):
    seed_company(client)
    token = wecom_token(client)
    _arm(client, **{fault: {"count": 2}})

    answers = [_users(client, token)["errcode"] for _ in range(3)]

    assert answers == [errcode, errcode, 0]
    assert client.get("/sandbox/api/faults").json()["faults"] == {}


def test_an_api_fault_can_target_one_path(client):
    seed_company(client)
    token = wecom_token(client)
    _arm(client, expired_token={"count": 1, "path": "/wecom/cgi-bin/message/send"})

    other = _users(client, token)
    send = client.post("/wecom/cgi-bin/message/send", params={"access_token": token}, json={
        "touser": "rep_a", "agentid": CONFIG.agent_id, "msgtype": "text",
        "text": {"content": "hi"}}).json()

    assert other["errcode"] == 0
    assert send["errcode"] == 42001


def test_token_faults_do_not_touch_gettoken(client):
    _arm(client, invalid_token=1)

    assert wecom_token(client)


def test_rate_limit_on_pay_is_http_429(client):
    _arm(client, rate_limit={"count": 1, "path": "/pay/"})

    response = client.get("/pay/v3/pay/transactions/out-trade-no/WY1234567",
                          params={"mchid": CONFIG.pay_mch_id}, headers=PAY_AUTH)

    assert response.status_code == 429
    assert response.json()["code"] == "FREQUENCY_LIMITED"


def test_slow_api_sleeps_before_answering(client, state):
    seed_company(client)
    token = wecom_token(client)
    _arm(client, slow_api={"count": 1, "ms": 1500})

    _users(client, token)
    _users(client, token)

    assert state.slept == [1.5]


def test_duplicate_callbacks_deliver_the_same_bytes_twice(client, app_posts):
    seed_company(client)
    _arm(client, duplicate_callbacks={"count": 1})

    _add(client)
    _add(client, name="李四")

    assert len(app_posts.posts) == 3
    assert app_posts.posts[0].body == app_posts.posts[1].body
    assert app_posts.posts[0].url == app_posts.posts[1].url
    assert open_callback(app_posts.posts[1])["ChangeType"] == "add_external_contact"
    copies = client.get("/sandbox/api/deliveries").json()["deliveries"]
    assert sorted(d["copy"] for d in copies) == [1, 1, 2]


def test_concurrent_duplicates_arrive_at_the_same_time_on_two_threads(client, state):
    seed_company(client)
    seen: list[tuple[int, float, float]] = []
    lock = threading.Lock()

    def slow_app(url, body, headers):
        started = time.monotonic()
        time.sleep(0.05)
        with lock:
            seen.append((threading.get_ident(), started, time.monotonic()))
        return 200

    state.deliver = slow_app
    _arm(client, duplicate_callbacks={"count": 1, "concurrent": True})

    _add(client)

    assert len(seen) == 2
    (thread_a, start_a, end_a), (thread_b, start_b, end_b) = seen
    assert thread_a != thread_b
    assert start_a < end_b and start_b < end_a  # they overlapped


def test_a_delay_past_the_answer_window_counts_as_a_timeout_and_is_retried(client, app_posts,
                                                                           state):
    seed_company(client)
    _arm(client, delay_callbacks={"count": 1, "seconds": 6})

    _add(client)

    [delivery] = client.get("/sandbox/api/deliveries").json()["deliveries"]
    assert state.slept[0] == 6.0
    assert len(app_posts.posts) == 2  # the late one reached the app, and so did the retry
    assert [a["timed_out"] for a in delivery["attempts"]] == [True, False]
    assert delivery["status"] == "delivered"


def test_a_short_delay_is_just_late(client, app_posts):
    seed_company(client)
    _arm(client, delay_callbacks={"count": 1, "seconds": 0.1})

    _add(client)

    assert len(app_posts.posts) == 1


def test_bad_signatures_do_not_verify(client, app_posts, platform_keys):
    seed_company(client)
    _arm(client, bad_signature={"count": 2})

    _add(client)
    _paid_order(client)

    with pytest.raises(crypto.CryptoError) as wecom_refused:
        open_callback(app_posts.posts[0])
    pay = app_posts.posts[-1]
    verifier = crypto.PayVerifier({CONFIG.pay_public_key_id: platform_keys[1]})
    with pytest.raises(crypto.CryptoError) as pay_refused:
        verifier.verify(serial=pay.headers["Wechatpay-Serial"],
                        timestamp=pay.headers["Wechatpay-Timestamp"],
                        nonce=pay.headers["Wechatpay-Nonce"], body=pay.body,
                        signature=pay.headers["Wechatpay-Signature"], now=NOW)
    assert wecom_refused.value.code == pay_refused.value.code == "bad_signature"

    _add(client, name="李四")
    assert open_callback(app_posts.posts[-1])["ChangeType"] == "add_external_contact"


def test_a_dropped_pay_notification_leaves_the_order_to_be_queried(client, app_posts):
    _arm(client, drop_pay_notifications=1)

    paid = _paid_order(client)
    query = client.get("/pay/v3/pay/transactions/out-trade-no/WY0000009",
                       params={"mchid": CONFIG.pay_mch_id}, headers=PAY_AUTH).json()

    assert paid["notified"] is False
    assert app_posts.posts == []
    assert query["trade_state"] == "SUCCESS"
    assert query["transaction_id"] == paid["transaction_id"]
    [delivery] = client.get("/sandbox/api/deliveries").json()["deliveries"]
    assert delivery["status"] == "dropped"
    assert json.loads(delivery["plaintext"])["out_trade_no"] == "WY0000009"


def test_faults_are_armed_in_code_too(client, state):
    seed_company(client)
    token = wecom_token(client)
    state.faults.arm("invalid_token", None)  # until cleared

    assert [_users(client, token)["errcode"] for _ in range(3)] == [40014] * 3
    client.delete("/sandbox/api/faults")
    assert _users(client, token)["errcode"] == 0


def test_bad_fault_requests_are_explained(client):
    unknown = client.post("/sandbox/api/faults", json={"gremlins": 1})
    bad_param = client.post("/sandbox/api/faults", json={"slow_api": {"seconds": 3}})
    bad_count = client.post("/sandbox/api/faults", json={"rate_limit": {"count": -1}})

    assert unknown.status_code == bad_param.status_code == bad_count.status_code == 400
    assert "unknown fault 'gremlins'" in unknown.json()["message"]
    assert "unknown parameter seconds" in bad_param.json()["message"]
