"""The WeChat flow end to end, through the sandbox on a real port.

The sandbox (Tencent's stand-in) serves WeCom, its OAuth page and WeChat Pay from a thread;
the app reaches it over real HTTP (no transport patched in), and the sandbox posts its
encrypted callbacks and signed Pay notifications to the live server from its own delivery
thread, as Tencent does. In a real browser: a manager makes a channel code for rep A, a
customer adds rep A through it, the lead and its WeCom card reach rep A, who signs in inside
WeCom on a phone, logs a follow-up and converts the lead; the manager sees the follow-up;
rep A opens the customer's contract on the phone and collects an instalment by WeChat Pay,
the order pages (phone and desk) turn paid by themselves, and the channel's figures show the
money it brought.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from tests.e2e.test_rep_phone_flow import screenshots_on_failure, sign_in, toast
from tests.wechat.channel_world import USERIDS, seed_directory
from tests.wechat.conftest import pay_keys, wechat  # noqa: F401 - fixtures
from weiying.pipeline.choices import FollowUpKind, LeadStatus
from weiying.pipeline.models import Contract, FollowUp, Lead
from weiying.wechat import client
from weiying.wechat import config as wechat_config
from weiying.wechat.choices import InboxStatus, OutboxStatus, PayOrderStatus
from weiying.wechat.models import Channel, ChannelArrival, InboxMessage, OutboxMessage, PayOrder
from weiying.wechat.sandbox import SandboxConfig, SandboxState, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

logger = logging.getLogger(__name__)

REP_A = USERIDS["rep_a"]
WAIT = 20.0  # seconds any one thing may take on a loaded machine


def wait_for(what: str, found: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `found` every 0.1 s until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


class Steps:
    """Wall-clock time of each step, logged as the test goes (-o log_cli=true shows it)."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.times: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.times[name] = round(now - self.last, 2)
        self.last = now
        logger.info("step %s: %.2f s (%.2f s in all)", name, self.times[name],
                    now - self.started)


@pytest.fixture
def sandbox(live_server: Any, wechat: Any, company: Any, pay_keys: dict[str, bytes],  # noqa: F811
            settings: Any, monkeypatch: Any) -> Iterator[SimpleNamespace]:
    """The sandbox on a free port with the app's test credentials, posting to the live server
    from its background delivery thread; the app pointed at it over real HTTP."""
    state = SandboxState(SandboxConfig(
        app_base_url=live_server.url, delivery_mode="thread",
        pay_platform_private_key=pay_keys["platform_private"].decode(),
        pay_platform_public_key=pay_keys["platform_public"].decode(),
        pay_merchant_public_key=pay_keys["merchant_public"].decode(),
    ))
    server, url = serve_in_thread(state, "127.0.0.1", 0)
    monkeypatch.setattr(client, "TRANSPORT", None)
    settings.WECHAT = {**settings.WECHAT, "WECOM_API": f"{url}/wecom",
                       "WECOM_OAUTH": f"{url}/wecom-open", "WECOM_QR_LOGIN": f"{url}/wecom-login",
                       "OA_API": f"{url}/oa", "OA_QR": f"{url}/oa-mp", "PAY_API": f"{url}/pay"}
    settings.WEIYING_BASE_URL = live_server.url  # the links in WeCom cards
    wechat_config.save_settings(actor=None,
                                pay_notify_url=f"{live_server.url}/wechat/pay/notify")
    wechat_config.forget()
    http = httpx.Client(base_url=url, timeout=10.0)

    def api(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = http.post(f"/sandbox/api{path}", json=body or {})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def get(path: str, **params: Any) -> dict[str, Any]:
        answer = http.get(f"/sandbox/api{path}", params=params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    box = SimpleNamespace(state=state, url=url, api=api, get=get)
    seed_directory(box, company)  # type: ignore[arg-type]
    try:
        yield box
    finally:
        state.deliverer.join(timeout=10)
        state.deliverer.stop()
        server.shutdown()
        http.close()
        wechat_config.forget()


@pytest.fixture
def product() -> Any:
    from weiying.catalog.models import Product

    return Product.objects.create(code="P-E2E", name="年度服务", list_price=Decimal("800.01"),
                                  vat_rate=Decimal("0.13"))


def signed_contract(customer: Any, product: Any) -> Contract:
    """The customer's signed contract of 1,600.02 in two instalments of 800.01 (services, as
    tests/wechat/test_pay.py builds it)."""
    from weiying.pipeline.services import contracts

    made = contracts.create_contract(
        actor=None, customer=customer, title="年度服务合同",
        lines=[{"product": product, "quantity": "2", "unit_price": "800.01"}])
    contracts.submit_contract(actor=None, contract=made)
    today = timezone.localdate()
    contracts.sign_contract(actor=None, contract=made, signed_on=today)
    contracts.plan_instalments(actor=None, contract=made, plan=[
        (today, "800.01"), (today + dt.timedelta(days=30), "800.01")])
    made.refresh_from_db()
    return made


def test_channel_code_to_lead_to_follow_up_to_wechat_pay_through_the_sandbox(
    live_server: Any, company: Any, sandbox: SimpleNamespace, product: Any, phone: Any,
    desk: Any,
) -> None:
    base = live_server.url
    steps = Steps()
    channel_name = f"展会扫码{uuid.uuid4().hex[:4]}"
    note = f"加了企微，约周四上门 {uuid.uuid4().hex[:6]}"

    with screenshots_on_failure("wechat-flow", phone=phone, desk=desk):
        # 1. the manager makes a channel code for rep A on the channel page
        sign_in(desk, base, company.manager_a)
        desk.goto(f"{base}{reverse('wechat:channel_list')}")
        desk.click(f"a[href='{reverse('wechat:channel_new')}']")
        desk.select_option("select[name=kind]", "wecom")
        desk.fill("input[name=name]", channel_name)
        desk.fill("input[name=cost]", "500")
        desk.select_option("select[name=members]", [str(company.rep_a.pk)])
        desk.click("form.form button.primary")
        desk.wait_for_url(re.compile(r"/wechat/channels/\d+/$"))
        channel = Channel.objects.get(name=channel_name)
        state = desk.locator("dl.fields code").first.inner_text()
        assert state == channel.state and state.startswith("ch")
        # WeCom really issued the code: the sandbox holds it, and its picture (fetched by
        # our server from the sandbox) shows on the page
        ways = {w["config_id"]: w for w in sandbox.get("/contact_ways")["contact_ways"]}
        way = ways[channel.config_id]
        assert (way["state"], way["user"], way["type"], way["scene"]) == (state, [REP_A], 1, 2)
        picture = desk.locator(f"img[src='{reverse('wechat:channel_qr', args=[channel.pk])}']")
        wait_for("the channel code's picture", lambda: picture.evaluate(
            "img => img.complete && img.naturalWidth > 0"))
        steps.done("1 channel created")

        # 2. a customer scans it: the sandbox posts add_external_contact to the live server,
        # the inbox stores it and the worker handles it (no drain called: it happens by itself)
        added = sandbox.api("/simulate/add_contact", {
            "state": state, "userid": REP_A, "name": "刘女士"})
        external_id = added["external_userid"]
        lead = wait_for("the channel's lead", lambda: Lead.objects.filter(
            external_id=f"wecom:{external_id}").select_related("customer").first())
        assert (lead.owner_id, lead.source, lead.channel, lead.status) == (
            company.rep_a.pk, "wecom", channel_name, LeadStatus.ASSIGNED)
        assert lead.customer is not None and lead.customer.owner_id == company.rep_a.pk
        arrival = ChannelArrival.objects.get(channel=channel)
        assert (arrival.external_id, arrival.employee_id, arrival.lead_id) == (
            external_id, company.rep_a.pk, lead.pk)
        row = InboxMessage.objects.get(kind="event:change_external_contact:add_external_contact")
        assert (row.source, row.status) == ("wecom_contacts", InboxStatus.DONE)
        steps.done("2 add_contact → lead")

        # 3. the outbox sends rep A the lead.assigned card through the sandbox
        lead_url = f"{base}{reverse('mobile:lead_detail', args=[lead.pk])}"

        def card() -> dict[str, Any] | None:
            for message in sandbox.get("/messages", userid=REP_A)["messages"]:
                if message["msgtype"] == "textcard" and message["content"]["url"] == lead_url:
                    return dict(message)
            return None

        message = wait_for("the lead.assigned card in rep A's WeCom", card)
        assert lead.name in message["content"]["title"] and not message["dropped"]
        # a person with no company: no "公司：—" line; the source and the channel named
        assert message["content"]["description"] == (
            f'<div class="gray">来源：企业微信 · 渠道：{channel_name}</div>')
        sent = OutboxMessage.objects.get(kind="lead.assigned")
        assert (sent.status, sent.to_userid, sent.wecom_msgid) == (
            OutboxStatus.SENT, REP_A, message["msgid"])
        # … and rep A's WeCom (the sandbox's employee inbox) shows it, on the phone
        phone.goto(f"{sandbox.url}/sandbox/inbox/{REP_A}")
        shown = phone.locator(".msg", has_text=lead.name)
        shown.wait_for()
        assert shown.locator(f"a[href='{lead_url}']").count() == 1
        steps.done("3 card in WeCom")

        # 4. rep A opens the app inside WeCom: WeCom's OAuth page, "that's me", signed in
        phone.goto(f"{base}/login/")
        phone.wait_for_url(re.compile(re.escape(sandbox.url) + r"/wecom-open/connect/oauth2/"))
        phone.click(f"button[name=pick][value='user:{REP_A}']")
        # (the browser keeps the OAuth address's #wechat_redirect through the redirects)
        phone.wait_for_url(re.compile(re.escape(f"{base}{reverse('mobile:my_day')}") + "(#.*)?$"))
        # "my day" lists the new lead; one tap opens it, one more starts the follow-up
        mine = phone.locator(f"a[href='{reverse('mobile:lead_detail', args=[lead.pk])}']")
        assert lead.name in mine.inner_text()
        mine.click()
        phone.wait_for_url(lead_url)
        customer_url = reverse("mobile:customer_detail", args=[lead.customer_id])
        assert phone.locator(f"a[href='{customer_url}']").count() == 1  # came in as it
        phone.click(f"a[href='{reverse('mobile:followup_new')}?lead={lead.pk}']")
        phone.click("label:has(input[name=kind][value=wechat])")
        phone.fill("textarea[name=note]", note)
        phone.click("label:has(input[name=next_quick][value='3d'])")
        phone.click("form button.big-action")
        phone.wait_for_url(lead_url)
        toast(phone).wait_for()
        assert note in phone.locator(".weui-cells").last.inner_text()
        followup = FollowUp.objects.get(lead=lead)
        assert (followup.note, followup.kind, followup.owner_id) == (
            note, FollowUpKind.WECHAT, company.rep_a.pk)
        lead.refresh_from_db()
        assert lead.status == LeadStatus.CONTACTED and lead.first_response_at is not None
        assert followup.customer_id == lead.customer_id  # the customer's follow-up too
        # and converts the lead with one more tap: it becomes the customer it came in as
        phone.click("form:has(input[name=action][value=convert]) button")
        phone.wait_for_url(lead_url)
        toast(phone).wait_for()
        lead.refresh_from_db()
        assert lead.status == LeadStatus.CONVERTED and lead.opportunity is not None
        assert (lead.customer_id, lead.opportunity.customer_id) == (
            arrival.customer_id, arrival.customer_id)
        # and the card's own link now opens the lead for the signed-in rep
        phone.goto(f"{sandbox.url}/sandbox/inbox/{REP_A}")
        phone.locator(f".msg a[href='{lead_url}']").first.click()
        phone.wait_for_url(lead_url)
        steps.done("4 WeCom sign-in, follow-up, conversion")

        # 5. the manager sees the follow-up on the lead and on the customer's timeline (the
        # lead came in as that customer)
        desk.goto(f"{base}{reverse('pipeline:lead_detail', args=[lead.pk])}")
        entry = desk.locator("ul.timeline li", has_text=note)
        entry.wait_for()
        assert company.rep_a.name in entry.inner_text()
        desk.goto(f"{base}{reverse('customers:customer_detail', args=[lead.customer_id])}")
        desk.locator("#timeline li.tl-followup", has_text=note).wait_for()
        steps.done("5 manager sees the follow-up")

        # 6. WeChat Pay: rep A, with the customer, opens the contract on the phone (lead →
        # customer → contract), taps "collect" on instalment 1 and turns the order's phone
        # page to the customer; finance watches the same order at the desk
        contract = signed_contract(lead.customer, product)
        first = contract.instalments.order_by("seq").first()
        assert first is not None
        phone_contract = reverse("mobile:contract_detail", args=[contract.pk])
        phone.goto(lead_url)
        phone.click(f"a[href='{customer_url}']")
        phone.wait_for_url(f"{base}{customer_url}")
        phone.click(f"a[href='{phone_contract}']")
        phone.wait_for_url(f"{base}{phone_contract}")
        assert phone.locator("[data-testid=contract-number]").inner_text() == contract.number
        assert phone.locator("[data-testid=contract-outstanding]").inner_text() == "¥1,600.02"
        # the whole page fits the phone, the collect button included
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        collect = phone.locator(f"[data-instalment='{first.pk}'] [data-testid=pay-collect]")
        box = collect.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        collect.click()
        phone.wait_for_url(re.compile(r"/wechat/pay/orders/\d+/show$"))
        order = PayOrder.objects.get(instalment=first)
        phone.locator("#pay-status .pay-qr svg.qr").wait_for()
        assert "¥800.01" in phone.locator(".pay-amount").inner_text()
        assert phone.url == f"{base}{reverse('wechat:payorder_show', args=[order.pk])}"
        desk.context.clear_cookies()
        sign_in(desk, base, company.finance)
        desk.goto(f"{base}{reverse('wechat:payorder_detail', args=[order.pk])}")
        desk.locator("#pay-status svg.qr").wait_for()
        assert order.code_url in desk.locator("#pay-status").inner_text()
        show = reverse("wechat:payorder_show", args=[order.pk])
        assert desk.locator(f"a[href='{show}']").count() == 1
        for page in (phone, desk):
            page.evaluate("window.__same_page = true")
        steps.done("6a pay order and QR code")

        # the customer pays: the sandbox posts the signed notification to the live server
        paid = sandbox.api("/simulate/pay", {"out_trade_no": order.out_trade_no})
        assert paid["notified"] is True
        # both pages turn paid by themselves (HTMX polls every 3 s), without a reload
        desk.locator("#pay-status .badge.ok").wait_for(timeout=WAIT * 1000)
        phone.locator("#pay-status .weui-icon-success").wait_for(timeout=WAIT * 1000)
        for page in (phone, desk):
            assert page.evaluate("window.__same_page") is True
        assert paid["transaction_id"] in desk.locator("#pay-status").inner_text()
        order.refresh_from_db()
        assert order.status == PayOrderStatus.PAID and order.receipt is not None
        assert (order.receipt.amount, order.receipt.contract_id) == (
            Decimal("800.01"), contract.pk)
        # and the contract shows instalment 1 collected, on the phone and at the desk
        phone.goto(f"{base}{phone_contract}")
        settled = phone.locator(f"[data-instalment='{first.pk}'] [data-testid=settled]")
        assert settled.inner_text() == "已收齐"
        assert phone.locator("[data-testid=contract-collected]").inner_text() == "¥800.01"
        assert phone.locator("[data-testid=pay-collect]").count() == 1  # instalment 2
        contract_url = f"{base}{reverse('pipeline:contract_detail', args=[contract.pk])}"
        desk.goto(contract_url)
        plan = desk.locator("table.list", has=desk.locator("th", has_text="到期日")).locator(
            "tbody tr")  # the collection plan (到期日: due on)
        assert "¥800.01" in plan.nth(0).locator("td.num").nth(1).inner_text()
        assert plan.nth(0).locator(".badge.ok").count() == 1
        assert plan.nth(1).locator(".badge.ok").count() == 0
        first.refresh_from_db()
        contract.refresh_from_db()
        assert (first.collected, contract.collected) == (Decimal("800.01"), Decimal("800.01"))
        steps.done("6b paid, receipt on the contract")

        # and the channel the customer came through shows what it brought, cost against cash
        desk.context.clear_cookies()
        sign_in(desk, base, company.manager_a)
        desk.goto(f"{base}{reverse('wechat:channel_detail', args=[channel.pk])}")
        figures = desk.locator(".grid .stat .value").all_inner_texts()
        # adds, leads, opportunities, signed contracts, collected, cost per lead, return
        assert figures == ["1", "1", "1", "1", "¥800.01", "¥500.00", "1.60×"]
        steps.done("7 channel figures")

    # Every callback and notification came from the sandbox's own thread and was taken
    assert sandbox.state.deliverer.join(timeout=WAIT)
    deliveries = sandbox.get("/deliveries")["deliveries"]
    logger.info("sandbox deliveries: %s", [
        (d["event"], d["status"], [(a["status"], a["ms"]) for a in d["attempts"]])
        for d in deliveries])
    assert sorted((d["event"], d["status"]) for d in deliveries) == [
        ("TRANSACTION.SUCCESS", "delivered"),
        ("change_external_contact/add_external_contact", "delivered")]
    logger.info("steps: %s, %.2f s in all", steps.times, sum(steps.times.values()))
