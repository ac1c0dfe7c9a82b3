"""The phone customer page inside WeCom: tapping "open the WeCom chat" signs the page, loads
the JS-SDK (the local stand-in in sandbox mode), configures it and opens the chat."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.wechat.conftest import pay_keys, wechat  # noqa: F401 - fixtures
from tests.wechat.push_world import fake_wecom_fixture, wecom_ids_fixture  # noqa: F401
from weiying.customers.models import Customer
from weiying.wechat import jssdk
from weiying.wechat.models import CustomerFollow

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_chat_button_signs_the_page_loads_the_sdk_and_opens_the_chat(
        live_server: Any, phone: Any, wecom_ids: Any, fake_wecom: Any, settings: Any) -> None:
    settings.WECHAT = {**settings.WECHAT, "SANDBOX": True}  # the local SDK stand-in
    customer = Customer.objects.create(name="企微客户", name_key="企微客户", owner=wecom_ids.rep_a,
                                       department=wecom_ids.team_a,
                                       last_activity_at=timezone.now())
    CustomerFollow.objects.create(customer=customer, employee=wecom_ids.rep_a,
                                  external_userid="wmEXTERNAL01", relation="owner")

    phone.goto(f"{live_server.url}/login/?password=1")  # WeCom's UA would go to WeCom OAuth
    phone.fill("input[name=username]", wecom_ids.rep_a.number.lower())
    phone.fill("input[name=password]", PASSWORD)
    phone.click("form button[type=submit]")
    phone.wait_for_load_state()
    phone.goto(f"{live_server.url}/m/customers/{customer.pk}/#contacts")
    phone.click("[data-testid=open-wecom-chat]")
    phone.wait_for_selector("[data-testid=sandbox-jssdk-notice]")
    calls = phone.evaluate("window.wx.calls")

    assert [name for name, _options in calls] == ["config", "agentConfig", "openEnterpriseChat"]
    config, agent, chat = (options for _name, options in calls)
    page_url = f"{live_server.url}/m/customers/{customer.pk}/"
    assert config["signature"] == jssdk.signature(
        ticket="corp-ticket", nonce=config["nonceStr"], timestamp=config["timestamp"],
        url=page_url)
    assert agent["signature"] == jssdk.signature(
        ticket="agent-ticket", nonce=agent["nonceStr"], timestamp=agent["timestamp"],
        url=page_url)
    assert (agent["corpid"], agent["agentid"]) == ("ww0a1b2c3d4e5f6789", "1000002")
    assert chat["externalUserIds"] == "wmEXTERNAL01"
