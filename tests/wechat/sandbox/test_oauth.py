from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from weiying.wechat.sandbox import SandboxConfig

from .conftest import seed_company, wecom_token

CORP = SandboxConfig().corp_id
AUTHORIZE = "/wecom-open/connect/oauth2/authorize"


def _sign_in(client, pick, path=AUTHORIZE):
    params = {"appid": CORP, "redirect_uri": "http://app/wechat/login?next=/my-day",
              "response_type": "code", "scope": "snsapi_base", "state": "s123"}
    response = client.post(path, params=params, data={"pick": pick})
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    return location, {k: v[0] for k, v in parse_qs(location.query).items()}


def _userinfo(client, code):
    return client.get("/wecom/cgi-bin/auth/getuserinfo",
                      params={"access_token": wecom_token(client), "code": code}).json()


def test_the_authorize_page_lists_the_members(client):
    seed_company(client)

    page = client.get(AUTHORIZE, params={"appid": CORP, "redirect_uri": "http://app/x",
                                         "state": "s"})

    assert page.status_code == 200
    assert "李雷" in page.text and "你已登录企业微信" in page.text
    assert "非企业成员" in page.text


def test_a_code_names_the_member_once(client):
    seed_company(client)
    location, query = _sign_in(client, "user:rep_a")

    first = _userinfo(client, query["code"])
    second = _userinfo(client, query["code"])

    assert location.netloc == "app" and location.path == "/wechat/login"
    assert query["next"] == "/my-day" and query["state"] == "s123"
    assert first == {"errcode": 0, "errmsg": "ok", "userid": "rep_a"}
    assert second["errcode"] == 40029


def test_a_code_expires_after_five_minutes(client, clock):
    seed_company(client)
    _location, query = _sign_in(client, "user:rep_a")

    clock.advance(301)

    assert _userinfo(client, query["code"])["errcode"] == 40029


def test_a_non_member_gets_an_openid(client):
    seed_company(client)
    _location, query = _sign_in(client, "stranger")

    answer = _userinfo(client, query["code"])

    assert answer["errcode"] == 0
    assert answer["openid"] and "userid" not in answer


def test_desktop_qr_login_offers_members_only(client):
    seed_company(client)

    page = client.get("/wecom-login/wwlogin/sso/login", params={
        "login_type": "CorpApp", "appid": CORP, "agentid": "1000002",
        "redirect_uri": "http://app/x", "state": "s"})
    _location, query = _sign_in(client, "user:manager", path="/wecom-login/wwlogin/sso/login")
    refused = client.post("/wecom-login/wwlogin/sso/login", params={
        "appid": CORP, "redirect_uri": "http://app/x"}, data={"pick": "stranger"})

    assert "非企业成员" not in page.text
    assert _userinfo(client, query["code"])["userid"] == "manager"
    assert refused.status_code == 400


def test_another_corps_appid_is_refused(client):
    page = client.get(AUTHORIZE, params={"appid": "wwother", "redirect_uri": "http://app/x"})

    assert page.status_code == 400


def test_a_code_lives_five_minutes_on_the_sandbox_clock(client):
    seed_company(client)
    _location, fresh = _sign_in(client, "user:rep_a")
    _location, stale = _sign_in(client, "user:rep_b")

    client.post("/sandbox/api/clock", json={"advance_seconds": 300})
    in_time = _userinfo(client, fresh["code"])
    client.post("/sandbox/api/clock", json={"advance_seconds": 1})

    assert in_time["userid"] == "rep_a"
    assert _userinfo(client, stale["code"])["errcode"] == 40029
