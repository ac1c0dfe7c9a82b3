import hashlib

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.wechat.push_world import (  # noqa: F401 - fixtures
    fake_wecom_fixture,
    sandbox_fixture,
    wecom_ids_fixture,
)
from weiying.customers.models import Customer
from weiying.wechat import jssdk
from weiying.wechat.models import CustomerFollow

pytestmark = pytest.mark.django_db

PAGE = "http://testserver/m/customers/5/?from=card"


def test_the_signature_is_tencents_documented_example():
    # The worked example of the JS-SDK documentation (附录1), computed by hand there.
    assert jssdk.signature(
        ticket="sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1A"
               "OcHKP7qg",
        nonce="Wm3WZYTPz0wzccnW", timestamp=1414587457, url="http://mp.weixin.qq.com?params=value",
    ) == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_signature_ignores_the_fragment():
    base = jssdk.signature(ticket="t", nonce="n", timestamp=1, url=PAGE)

    assert jssdk.signature(ticket="t", nonce="n", timestamp=1, url=PAGE + "#top") == base


def test_the_config_signs_the_page_for_wx_config_and_agent_config(wecom_ids, fake_wecom, login):
    response = login(wecom_ids.rep_a).get(reverse("wechat:jssdk_config"), {"url": PAGE + "#x"})

    data = response.json()
    ts, nonce, agent = data["timestamp"], data["nonceStr"], data["agentConfig"]
    assert response.status_code == 200
    assert data["appId"] == "ww0a1b2c3d4e5f6789"
    assert data["signature"] == hashlib.sha1(
        f"jsapi_ticket=corp-ticket&noncestr={nonce}&timestamp={ts}&url={PAGE}".encode()
    ).hexdigest()
    assert (agent["corpid"], agent["agentid"], agent["timestamp"]) == (
        "ww0a1b2c3d4e5f6789", "1000002", ts)
    assert agent["signature"] == hashlib.sha1(
        f"jsapi_ticket=agent-ticket&noncestr={agent['nonceStr']}&timestamp={ts}"
        f"&url={PAGE}".encode()).hexdigest()
    assert data["sdkUrl"] == "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"


def test_tickets_are_fetched_once_and_cached(wecom_ids, fake_wecom, login):
    browser = login(wecom_ids.rep_a)

    browser.get(reverse("wechat:jssdk_config"), {"url": PAGE})
    browser.get(reverse("wechat:jssdk_config"), {"url": PAGE})

    assert fake_wecom.calls.count("/cgi-bin/get_jsapi_ticket") == 1
    assert fake_wecom.calls.count("/cgi-bin/ticket/get") == 1


def test_the_config_is_for_signed_in_people_only(wecom_ids, fake_wecom):
    response = Client().get(reverse("wechat:jssdk_config"), {"url": PAGE})

    assert response.status_code == 401
    assert response.json() == {"code": "unauthenticated", "message": "请先登录，再刷新页面。"}


@pytest.mark.parametrize("url", ["", "https://evil.example/page", "ftp://testserver/x",
                                 "/m/customers/5/"])
def test_only_pages_of_this_site_are_signed(wecom_ids, fake_wecom, login, url):
    response = login(wecom_ids.rep_a).get(reverse("wechat:jssdk_config"), {"url": url})

    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_without_wecom_the_config_says_so(company, login):
    response = login(company.rep_a).get(reverse("wechat:jssdk_config"), {"url": PAGE})

    assert response.status_code == 503 and response.json()["code"] == "not_configured"


def test_sandbox_mode_serves_the_local_stand_in(wecom_ids, fake_wecom, login, settings):
    settings.WECHAT = {**settings.WECHAT, "SANDBOX": True}

    data = login(wecom_ids.rep_a).get(reverse("wechat:jssdk_config"), {"url": PAGE}).json()

    assert data["sdkUrl"] == "/static/vendor/wecom-jssdk/jweixin-sandbox.js"
    shipped = finders.find("vendor/wecom-jssdk/jweixin-sandbox.js")
    text = open(shipped, encoding="utf-8").read()
    assert "openEnterpriseChat" in text and "agentConfig" in text


# --- the phone customer page ------------------------------------------------------------------
def _customer(owner, name="企微客户"):
    return Customer.objects.create(name=name, name_key=name, owner=owner,
                                   department=owner.department, last_activity_at=timezone.now())


def _follow(customer, employee, external="wmEXTERNAL01", **fields):
    return CustomerFollow.objects.create(customer=customer, employee=employee,
                                         external_userid=external, relation="owner", **fields)


def test_the_customer_page_opens_the_wecom_chat_for_a_customer_who_follows_the_rep(
        wecom_ids, login):
    customer = _customer(wecom_ids.rep_a)
    _follow(customer, wecom_ids.rep_a)

    page = login(wecom_ids.rep_a).get(reverse("mobile:customer_detail", args=[customer.pk]))

    html = page.content.decode()
    assert 'data-testid="open-wecom-chat"' in html
    assert 'data-external="wmEXTERNAL01"' in html
    assert 'data-config="/wechat/jssdk/config/"' in html
    assert "在企业微信中打开与该客户的聊天" in html
    assert "wx.agentConfig" in html and "openEnterpriseChat" in html


def test_no_chat_button_when_the_customer_does_not_follow_the_signed_in_rep(wecom_ids, login):
    followed = _customer(wecom_ids.rep_a)
    _follow(followed, wecom_ids.rep_a2)  # follows a colleague, not rep A
    ended = _customer(wecom_ids.rep_a, "已删除")
    _follow(ended, wecom_ids.rep_a, "wmGONE", ended_at=timezone.now())
    plain = _customer(wecom_ids.rep_a, "无企微")

    for customer in (followed, ended, plain):
        page = login(wecom_ids.rep_a).get(reverse("mobile:customer_detail", args=[customer.pk]))
        assert page.status_code == 200
        assert "open-wecom-chat" not in page.content.decode(), customer.name


def test_a_manager_sees_no_chat_button_for_the_rep_customer(wecom_ids, login):
    customer = _customer(wecom_ids.rep_a)
    _follow(customer, wecom_ids.rep_a)

    page = login(wecom_ids.manager_a).get(reverse("mobile:customer_detail", args=[customer.pk]))

    assert page.status_code == 200 and "open-wecom-chat" not in page.content.decode()


# --- against the sandbox ------------------------------------------------------------------------
def test_sandbox_tickets_sign_the_page(sandbox, login):
    from weiying.org.models import Employee

    rep = Employee.objects.get(wecom_userid="lilei")

    data = login(rep).get(reverse("wechat:jssdk_config"), {"url": PAGE}).json()

    corp, _ttl = sandbox.ticket("corp")
    agent, _ttl = sandbox.ticket("agent")
    assert data["signature"] == jssdk.signature(ticket=corp, nonce=data["nonceStr"],
                                                timestamp=data["timestamp"], url=PAGE)
    assert data["agentConfig"]["signature"] == jssdk.signature(
        ticket=agent, nonce=data["agentConfig"]["nonceStr"], timestamp=data["timestamp"],
        url=PAGE)

