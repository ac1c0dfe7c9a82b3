from __future__ import annotations

from weiying.wechat.sandbox import SandboxConfig

from .conftest import NOW, oa_token, wecom_token

CORP = SandboxConfig().corp_id


def _department_list(client, token):
    return client.get("/wecom/cgi-bin/department/list", params={"access_token": token}).json()


def test_gettoken_returns_the_same_token_until_it_expires(client, clock):
    first = client.get("/wecom/cgi-bin/gettoken",
                       params={"corpid": CORP, "corpsecret": "app-secret"}).json()
    clock.advance(100)
    again = client.get("/wecom/cgi-bin/gettoken",
                       params={"corpid": CORP, "corpsecret": "app-secret"}).json()

    assert first["expires_in"] == 7200
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] == 7100


def test_each_secret_has_its_own_token(client):
    assert wecom_token(client, "app-secret") != wecom_token(client, "contact-secret")


def test_wrong_corpid_or_secret_is_refused(client):
    wrong_corp = client.get("/wecom/cgi-bin/gettoken",
                            params={"corpid": "wwnope", "corpsecret": "app-secret"}).json()
    wrong_secret = client.get("/wecom/cgi-bin/gettoken",
                              params={"corpid": CORP, "corpsecret": "nope"}).json()

    assert wrong_corp["errcode"] == 40013
    assert wrong_secret["errcode"] == 40001


def test_an_expired_token_answers_42001_and_a_new_one_is_issued(client, clock):
    token = wecom_token(client)
    clock.advance(7200)

    assert _department_list(client, token)["errcode"] == 42001
    fresh = wecom_token(client)
    assert fresh != token
    assert _department_list(client, fresh)["errcode"] == 0


def test_unknown_token_is_40014_and_missing_token_41001(client):
    assert _department_list(client, "not-a-token")["errcode"] == 40014
    assert client.get("/wecom/cgi-bin/department/list").json()["errcode"] == 41001


def test_an_official_account_token_is_not_a_wecom_token(client):
    token = oa_token(client)

    assert _department_list(client, token)["errcode"] == 40014


def test_stable_token_is_stable_unless_forced(client):
    config = SandboxConfig()
    body = {"grant_type": "client_credential", "appid": config.oa_app_id,
            "secret": config.oa_secret}
    first = client.post("/oa/cgi-bin/stable_token", json=body).json()
    second = client.post("/oa/cgi-bin/stable_token", json=body).json()
    forced = client.post("/oa/cgi-bin/stable_token", json={**body, "force_refresh": True}).json()

    assert first["access_token"] == second["access_token"] != forced["access_token"]
    assert "errcode" not in first
    assert client.post("/oa/cgi-bin/stable_token",
                       json={**body, "secret": "x"}).json()["errcode"] == 40125
    assert client.post("/oa/cgi-bin/stable_token",
                       json={**body, "appid": "wxno"}).json()["errcode"] == 40013


def test_official_account_says_40001_for_an_unknown_token(client):
    answer = client.get("/oa/cgi-bin/user/info",
                        params={"access_token": "nope", "openid": "o1"}).json()

    assert answer["errcode"] == 40001


def test_jsapi_and_agent_tickets_are_stable_while_valid(client):
    token = wecom_token(client)
    corp = client.get("/wecom/cgi-bin/get_jsapi_ticket", params={"access_token": token}).json()
    agent = client.get("/wecom/cgi-bin/ticket/get",
                       params={"access_token": token, "type": "agent_config"}).json()
    corp_again = client.get("/wecom/cgi-bin/get_jsapi_ticket",
                            params={"access_token": token}).json()

    assert corp["errcode"] == agent["errcode"] == 0
    assert corp["ticket"] == corp_again["ticket"] != agent["ticket"]
    assert corp["expires_in"] == 7200


def test_the_sandbox_clock_moves_forward_through_the_control_api(client, clock):
    before = client.get("/sandbox/api/clock").json()
    moved = client.post("/sandbox/api/clock", json={"advance_seconds": 90.5}).json()
    backwards = client.post("/sandbox/api/clock", json={"advance_seconds": -1})
    nonsense = client.post("/sandbox/api/clock", json={"advance_seconds": "soon"})
    missing = client.post("/sandbox/api/clock", json={})

    assert (before["now"], before["offset"], before["time"]) == (
        NOW, 0.0, "2026-05-29T04:26:40+08:00")
    assert (moved["now"], moved["offset"]) == (NOW + 90.5, 90.5)
    for refused in (backwards, nonsense, missing):
        assert refused.status_code == 400 and refused.json()["code"] == "bad_field"
    client.post("/sandbox/api/reset")
    assert client.get("/sandbox/api/clock").json()["offset"] == 0.0


def test_a_token_expires_when_the_sandbox_clock_passes_its_lifetime(client):
    token = wecom_token(client)
    client.post("/sandbox/api/clock", json={"advance_seconds": 7199})
    still = _department_list(client, token)
    client.post("/sandbox/api/clock", json={"advance_seconds": 1})

    assert still["errcode"] == 0
    assert _department_list(client, token)["errcode"] == 42001
    fresh = client.get("/wecom/cgi-bin/gettoken",
                       params={"corpid": CORP, "corpsecret": "app-secret"}).json()
    assert fresh["access_token"] != token and fresh["expires_in"] == 7200


def test_moving_the_clock_in_code_is_the_same_clock(state, client):
    token = wecom_token(client)

    state.advance(7200)

    assert state.now() == NOW + 7200
    assert _department_list(client, token)["errcode"] == 42001
