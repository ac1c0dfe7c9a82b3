from __future__ import annotations

import threading
import time

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from weiying.wechat.sandbox import SandboxConfig, SandboxState, serve_in_thread
from weiying.wechat.sandbox.delivery import CallbackTimeout

from .conftest import NOW, Posted, open_callback, seed_company

CONFIG = SandboxConfig()


def _add(client):
    return client.post("/sandbox/api/simulate/add_contact",
                       json={"name": "张三", "userid": "rep_a"}).json()


def _deliveries(client):
    return client.get("/sandbox/api/deliveries").json()["deliveries"]


def test_a_wecom_callback_is_retried_after_a_non_200_three_tries_in_all(client, app_posts,
                                                                          state):
    seed_company(client)
    app_posts.answers = [500, 403, 503]

    _add(client)

    [delivery] = _deliveries(client)
    assert len(app_posts.posts) == 3
    assert len({p.body for p in app_posts.posts}) == 1  # the same bytes each time
    assert delivery["status"] == "failed"
    assert [a["status"] for a in delivery["attempts"]] == [500, 403, 503]
    assert state.slept == [5.0, 5.0]


def test_a_retry_that_succeeds_ends_it(client, app_posts):
    seed_company(client)
    app_posts.answers = [502]

    _add(client)

    [delivery] = _deliveries(client)
    assert delivery["status"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [502, 200]


def test_a_timeout_is_retried(client, app_posts):
    seed_company(client)
    app_posts.answers = [CallbackTimeout("slow")]

    _add(client)

    [delivery] = _deliveries(client)
    assert delivery["attempts"][0]["timed_out"] is True
    assert delivery["status"] == "delivered"
    assert len(app_posts.posts) == 2


def test_an_answer_after_the_window_counts_as_a_timeout(client, state):
    seed_company(client)
    state.config.callback_timeout = 0.05
    calls = []

    def slow_then_fast(url, body, headers):
        calls.append(url)
        if len(calls) == 1:
            time.sleep(0.1)
        return 200

    state.deliver = slow_then_fast

    _add(client)

    [delivery] = _deliveries(client)
    assert [a["timed_out"] for a in delivery["attempts"]] == [True, False]


def test_pay_notifications_follow_the_pay_schedule(client, app_posts, state):
    client.post("/pay/v3/pay/transactions/native", headers={
        "Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{CONFIG.pay_mch_id}"'}, json={
        "appid": CONFIG.pay_app_id, "mchid": CONFIG.pay_mch_id, "description": "x",
        "out_trade_no": "WY0000001", "notify_url": "http://app/n", "amount": {"total": 1}})
    app_posts.answers = [500, 500, 500, 500]

    client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY0000001"})

    assert state.slept == [15.0, 15.0, 30.0]
    assert len(app_posts.posts) == 4
    assert len({p.headers["Wechatpay-Nonce"] for p in app_posts.posts}) == 4  # re-signed
    assert _deliveries(client)[0]["status"] == "failed"


def test_204_ends_a_pay_notification(client, app_posts):
    client.post("/pay/v3/pay/transactions/native", headers={
        "Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{CONFIG.pay_mch_id}"'}, json={
        "appid": CONFIG.pay_app_id, "mchid": CONFIG.pay_mch_id, "description": "x",
        "out_trade_no": "WY0000002", "notify_url": "http://app/n", "amount": {"total": 1}})
    app_posts.answers = [204]

    client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY0000002"})

    assert _deliveries(client)[0]["status"] == "delivered"


def _until(condition, seconds=20.0):  # a background thread on a loaded machine
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_thread_mode_delivers_in_the_background_retries_on_the_sandbox_clock(
        client, app_posts, state):
    seed_company(client)
    state.config.delivery_mode = "thread"
    state.config.wecom_retry_seconds = [5.0, 5.0]
    app_posts.answers = [500]

    _add(client)
    _until(lambda: len(app_posts.posts) == 1)
    waiting = state.deliverer.join(0.3)  # the retry is due 5 s later on the sandbox clock
    client.post("/sandbox/api/clock", json={"advance_seconds": 5})

    assert waiting is False
    assert state.deliverer.join(5)
    assert len(app_posts.posts) == 2
    assert _deliveries(client)[0]["status"] == "delivered"


def test_pay_retries_in_the_background_follow_tencents_schedule_as_the_clock_moves(
        client, app_posts, state, clock):
    state.config.delivery_mode = "thread"
    state.config.pay_retry_seconds = [15.0, 15.0, 30.0, 180.0]
    client.post("/pay/v3/pay/transactions/native", headers={
        "Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{CONFIG.pay_mch_id}"'}, json={
        "appid": CONFIG.pay_app_id, "mchid": CONFIG.pay_mch_id, "description": "x",
        "out_trade_no": "WY0000003", "notify_url": "http://app/n", "amount": {"total": 1}})
    app_posts.answers = [500, 500, 500]

    client.post("/sandbox/api/simulate/pay", json={"out_trade_no": "WY0000003"})
    _until(lambda: len(app_posts.posts) == 1)
    state.advance(14)
    state.deliverer.join(0.3)
    after_14 = len(app_posts.posts)
    state.advance(1)
    _until(lambda: len(app_posts.posts) == 2)
    clock.advance(45)  # a test's own clock moved: the worker notices within its poll
    _until(lambda: len(app_posts.posts) == 3)
    state.advance(30)
    _until(lambda: len(app_posts.posts) == 4)

    assert after_14 == 1
    assert state.deliverer.join(5)
    delivery = _deliveries(client)[0]
    assert [a["at"] - NOW for a in delivery["attempts"]] == [0, 15, 60, 90]
    assert delivery["status"] == "delivered"


@pytest.fixture
def app_server():
    """A stand-in app on a real port: answers 200 and records what came, or sleeps first
    when told to."""
    received: list[Posted] = []
    behaviour = {"sleep": 0.0}

    @Request.application
    def receive(request: Request) -> Response:
        received.append(Posted(request.url, request.get_data(), dict(request.headers)))
        if behaviour["sleep"]:
            delay, behaviour["sleep"] = behaviour["sleep"], 0.0
            time.sleep(delay)
        return Response(b"", status=200)

    server = make_server("127.0.0.1", 0, receive, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received, behaviour
    server.shutdown()


def test_end_to_end_over_real_sockets(app_server, platform_keys):
    app_url, received, behaviour = app_server
    private, public = platform_keys
    state = SandboxState(SandboxConfig(
        app_base_url=app_url, callback_timeout=0.3, wecom_retry_seconds=[0.05, 0.05],
        pay_platform_private_key=private.decode(), pay_platform_public_key=public.decode()))
    server, url = serve_in_thread(state)
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            seed_company(http)
            behaviour["sleep"] = 0.6  # the first try outlives the answer window

            http.post("/sandbox/api/simulate/add_contact",
                      json={"name": "张三", "userid": "rep_a", "state": "e2e"})
            assert http.post("/sandbox/api/wait", json={"timeout": 5}).json()["idle"]
            delivery = http.get("/sandbox/api/deliveries").json()["deliveries"][0]
    finally:
        server.shutdown()
        state.deliverer.stop()

    assert [a["timed_out"] for a in delivery["attempts"]] == [True, False]
    assert delivery["status"] == "delivered"
    assert len(received) == 2 and received[0].body == received[1].body
    assert received[1].path == "/wechat/callback/wecom-contacts"
    assert open_callback(received[1])["State"] == "e2e"
