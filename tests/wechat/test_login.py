import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tests.wechat.push_world import (  # noqa: F401 - fixtures
    fake_wecom_fixture,
    sandbox_fixture,
    wecom_ids_fixture,
)
from weiying.core.models import AuditLog
from weiying.org.models import Employee

pytestmark = pytest.mark.django_db

CALLBACK = "http%3A%2F%2Ftestserver%2Fwechat%2Flogin%2Fcallback%2F"
WXWORK = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh")


def start(browser, path="wechat:login", query=""):
    response = browser.get(reverse(path) + query)
    assert response.status_code == 302
    location = response["Location"]
    return location, parse_qs(urlsplit(location.split("#")[0]).query)["state"][0]


def come_back(browser, state, code):
    return browser.get(reverse("wechat:login_callback"), {"code": code, "state": state})


def signed_in_as(browser):
    return browser.session.get("_auth_user_id")


def new_code(fake, userid=None, **answer):
    code = uuid.uuid4().hex
    fake.userinfo[code] = {"errcode": 0, "errmsg": "ok", **(
        {"userid": userid} if userid else {}), **answer}
    return code


def refusal(response):
    return response.content.decode()


# --- starting ---------------------------------------------------------------------------------
def test_login_goes_to_wecom_oauth_with_a_state_kept_in_the_session(wecom_ids, fake_wecom):
    browser = Client()

    location, state = start(browser)

    assert location == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww0a1b2c3d4e5f6789"
        f"&redirect_uri={CALLBACK}&response_type=code&scope=snsapi_base&state={state}"
        "&agentid=1000002#wechat_redirect")
    assert browser.session["wechat_login"]["state"] == state and len(state) >= 24


def test_desk_qr_login_goes_to_wecom_sso_with_the_same_callback(wecom_ids, fake_wecom):
    browser = Client()

    location, state = start(browser, "wechat:login_qr")

    assert location == (
        "https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp"
        f"&appid=ww0a1b2c3d4e5f6789&agentid=1000002&redirect_uri={CALLBACK}&state={state}")


def test_a_good_code_signs_the_employee_in_and_goes_to_next(wecom_ids, fake_wecom):
    browser = Client()
    _location, state = start(browser, query="?next=/m/leads/")

    response = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert response.status_code == 302 and response["Location"] == "/m/leads/"
    assert signed_in_as(browser) == str(wecom_ids.rep_a.user_id)
    assert browser.get("/m/leads/").status_code == 200
    log = AuditLog.objects.get(action="wechat.login")
    assert (log.actor_id, log.object_id) == (wecom_ids.rep_a.user_id, str(wecom_ids.rep_a.pk))
    assert log.after == {"via": "oauth", "wecom_userid": "lilei"}


def test_without_next_oauth_lands_on_my_day_and_qr_on_the_desk(wecom_ids, fake_wecom):
    phone, desk = Client(), Client()
    _l, state = start(phone)
    _l, desk_state = start(desk, "wechat:login_qr")

    assert come_back(phone, state, new_code(fake_wecom, "lilei"))["Location"] == "/m/"
    assert come_back(desk, desk_state, new_code(fake_wecom, "wangjl"))["Location"] == "/"


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x",
                                    "/\\evil.example", "javascript:alert(1)"])
def test_next_is_only_ever_a_path_of_this_site(wecom_ids, fake_wecom, target):
    browser = Client()
    _location, state = start(browser, query=f"?next={target}")

    response = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert response["Location"] == "/m/"


# --- refusals ---------------------------------------------------------------------------------
def test_a_wecom_user_who_is_not_an_employee_is_refused(wecom_ids, fake_wecom):
    browser = Client()
    _location, state = start(browser)

    response = come_back(browser, state, new_code(fake_wecom, "stranger-007"))

    assert response.status_code == 403
    assert "这个企业微信账号不在员工名册中" in refusal(response)
    assert signed_in_as(browser) is None
    log = AuditLog.objects.get(action="wechat.login_refused")
    assert (log.object_id, log.after) == ("stranger-007", {"reason": "not_employee",
                                                           "via": "oauth"})


def test_someone_outside_the_company_with_only_an_openid_is_refused(wecom_ids, fake_wecom):
    browser = Client()
    _location, state = start(browser)

    response = come_back(browser, state, new_code(fake_wecom, openid="oAbC123"))

    assert response.status_code == 403
    assert "这个企业微信账号不在员工名册中" in refusal(response)


def test_an_employee_who_left_is_refused(wecom_ids, fake_wecom):
    Employee.objects.filter(pk=wecom_ids.rep_a.pk).update(status="left")
    browser = Client()
    _location, state = start(browser)

    response = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert response.status_code == 403
    assert "名册显示你已离职，无法再登录" in refusal(response)
    assert signed_in_as(browser) is None


def test_an_employee_without_a_login_is_refused(wecom_ids, fake_wecom):
    Employee.objects.filter(pk=wecom_ids.rep_a.pk).update(user=None)
    browser = Client()
    _location, state = start(browser)

    response = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert response.status_code == 403
    assert "你在名册中，但还没有微营登录账号" in refusal(response)


def test_a_reused_code_gets_a_clear_page(wecom_ids, fake_wecom):
    browser = Client()
    code = new_code(fake_wecom, "lilei")
    _location, state = start(browser)
    assert come_back(browser, state, code).status_code == 302
    other = Client()
    _location, state = start(other)

    response = come_back(other, state, code)

    assert response.status_code == 400
    assert "这个登录码已经用过或已过期" in refusal(response)
    assert signed_in_as(other) is None


def test_a_code_wecom_calls_invalid_gets_the_same_page(wecom_ids, fake_wecom):
    browser = Client()
    _location, state = start(browser)

    response = come_back(browser, state, "never-issued")

    assert response.status_code == 400
    assert "这个登录码已经用过或已过期" in refusal(response)


@pytest.mark.parametrize("state", ["", "forged-state"])
def test_a_bad_state_is_refused(wecom_ids, fake_wecom, state):
    browser = Client()
    start(browser)

    response = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert response.status_code == 400
    assert "这次登录不是从这个浏览器发起的" in refusal(response)
    assert signed_in_as(browser) is None
    assert fake_wecom.calls.count("/cgi-bin/auth/getuserinfo") == 0


def test_a_state_is_good_for_one_callback_only(wecom_ids, fake_wecom):
    browser = Client()
    _location, state = start(browser)
    come_back(browser, state, new_code(fake_wecom, "lilei"))
    browser.logout()

    response = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert response.status_code == 400


def test_wecom_sign_in_not_set_up_says_so(company):
    response = Client().get(reverse("wechat:login"))

    assert response.status_code == 503
    assert "尚未设置企业微信登录" in refusal(response)


# --- the sign-in page ---------------------------------------------------------------------------
def test_the_sign_in_page_offers_wecom(wecom_ids, fake_wecom):
    page = Client().get(reverse("web:login"), {"next": "/pipeline/leads/"})

    assert page.status_code == 200
    assert 'href="/wechat/login/qr/?next=%2Fpipeline%2Fleads%2F"' in page.content.decode()
    assert "使用企业微信登录" in page.content.decode()


def test_the_sign_in_page_inside_wecom_goes_straight_to_wecom(wecom_ids, fake_wecom):
    response = Client(HTTP_USER_AGENT=WXWORK).get(reverse("web:login"), {"next": "/m/"})

    assert response.status_code == 302
    assert response["Location"] == "/wechat/login/?next=%2Fm%2F"


def test_the_way_back_from_a_refusal_keeps_the_password_form(wecom_ids, fake_wecom):
    page = Client(HTTP_USER_AGENT=WXWORK).get(reverse("web:login"), {"password": "1"})

    assert page.status_code == 200 and 'name="password"' in page.content.decode()


def test_without_wecom_the_sign_in_page_is_as_before(company):
    page = Client(HTTP_USER_AGENT=WXWORK).get(reverse("web:login"))

    assert page.status_code == 200 and "使用企业微信登录" not in page.content.decode()


def test_a_phone_page_inside_wecom_signs_in_through_wecom_and_comes_back(wecom_ids, fake_wecom):
    browser = Client(HTTP_USER_AGENT=WXWORK)

    to_login = browser.get("/m/leads/")
    to_wecom = browser.get(to_login["Location"])
    oauth = browser.get(to_wecom["Location"])
    state = parse_qs(urlsplit(oauth["Location"].split("#")[0]).query)["state"][0]
    back = come_back(browser, state, new_code(fake_wecom, "lilei"))

    assert to_login["Location"] == "/login/?next=/m/leads/"
    assert back["Location"] == "/m/leads/"


# --- against the sandbox ------------------------------------------------------------------------
def _sandbox_sign_in(sandbox, browser, start_path, pick):
    """Start in the app, pick who you are on the sandbox's WeCom page, come back."""
    location, _state = start(browser, start_path)
    target = urlsplit(location.split("#")[0])
    assert target.netloc == "sandbox"
    answer = sandbox.http.post(f"{target.path}?{target.query}", data={"pick": pick})
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    return browser.get(f"{back.path}?{back.query}")


def test_sandbox_wecom_oauth_signs_a_member_in(sandbox):
    browser = Client()

    response = _sandbox_sign_in(sandbox, browser, "wechat:login", "user:lilei")

    assert response.status_code == 302 and response["Location"] == "/m/"
    assert signed_in_as(browser) == str(Employee.objects.get(wecom_userid="lilei").user_id)


def test_sandbox_qr_login_signs_a_manager_in(sandbox):
    browser = Client()

    response = _sandbox_sign_in(sandbox, browser, "wechat:login_qr", "user:wangjl")

    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(browser) == str(Employee.objects.get(wecom_userid="wangjl").user_id)


def test_sandbox_a_stranger_is_refused(sandbox):
    browser = Client()

    response = _sandbox_sign_in(sandbox, browser, "wechat:login", "stranger")

    assert response.status_code == 403
    assert signed_in_as(browser) is None


def test_sandbox_a_code_used_twice_is_refused_by_wecom(sandbox):
    browser = Client()
    location, _state = start(browser)
    target = urlsplit(location.split("#")[0])
    answer = sandbox.http.post(f"{target.path}?{target.query}", data={"pick": "user:lilei"})
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token = sandbox.http.get("/wecom/cgi-bin/gettoken", params={
        "corpid": "ww0a1b2c3d4e5f6789", "corpsecret": "app-secret"}).json()["access_token"]
    sandbox.http.get("/wecom/cgi-bin/auth/getuserinfo", params={"access_token": token,
                                                                 "code": code})
    _location, state = start(browser)

    response = come_back(browser, state, code)  # new in this app, spent at WeCom

    assert response.status_code == 400
    assert "这个登录码已经用过或已过期" in refusal(response)
