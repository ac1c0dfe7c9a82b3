"""Channel codes (渠道活码) against the sandbox: create, edit and deactivate call WeCom; an add
through a code becomes one lead owned by the added rep; each channel's figures; the scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from tests.wechat.channel_world import english_fixture, sandbox_fixture  # noqa: F401
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.models import Lead
from weiying.wechat import channels, inbox
from weiying.wechat.models import Channel, ChannelArrival

pytestmark = pytest.mark.django_db

ADD_WAY = "/wecom/cgi-bin/externalcontact/add_contact_way"


def make_channel(company: Any, *, name: str = "展会扫码", members: Any = None,
                 teams: Any = (), cost: Any = "1200.00", state: str = "") -> Channel:
    return channels.create_channel(
        actor=user_of(company.manager_a), name=name, cost=cost,
        members=[company.rep_a] if members is None else members, teams=teams, state=state)


# --- management -----------------------------------------------------------------------------
def test_creating_a_channel_asks_wecom_for_a_code_and_stores_it(company, sandbox):
    channel = make_channel(company, state="expo-2025")

    way = sandbox.state.contact_ways[channel.config_id]
    assert (way.type, way.scene, way.state, way.user, way.party, way.skip_verify) == (
        1, 2, "expo-2025", ["lilei"], [], True)
    assert channel.qr_url == f"http://sandbox/sandbox/qr/{channel.config_id}"
    assert (channel.owner, channel.department, channel.cost) == (
        company.manager_a, company.team_a, Decimal("1200.00"))
    assert list(channel.members.all()) == [company.rep_a]
    assert AuditLog.objects.filter(action="wechat.channel_create", object_id=str(channel.pk)
                                   ).count() == 1
    assert DomainEvent.objects.filter(name="channel.created").count() == 1


def test_several_reps_or_a_team_make_a_multi_person_code(company, sandbox):
    channel = make_channel(company, members=[company.rep_a, company.rep_a2], name="双人")
    team = make_channel(company, members=[], teams=[company.team_a], name="团队")

    assert sandbox.state.contact_ways[channel.config_id].type == 2
    assert sandbox.state.contact_ways[channel.config_id].user == ["lilei", "zhaoxs"]
    assert (sandbox.state.contact_ways[team.config_id].type,
            sandbox.state.contact_ways[team.config_id].party) == (2, [31])


def test_an_empty_state_is_generated(company, sandbox):
    channel = make_channel(company)

    assert channel.state.startswith("ch") and len(channel.state) == 18
    assert sandbox.state.contact_ways[channel.config_id].state == channel.state


def test_a_state_longer_than_30_characters_is_refused_before_calling_wecom(company, sandbox):
    with pytest.raises(ValidationFailed) as exc:
        make_channel(company, state="a" * 31)

    assert exc.value.field == "state"
    assert str(exc.value.message) == (
        "The state is 31 characters long; WeChat accepts at most 30. Shorten it or leave it "
        "empty to have one generated.")
    assert sandbox.calls(ADD_WAY) == 0
    assert not Channel.objects.exists()


def test_a_state_with_other_characters_or_taken_is_refused(company, sandbox):
    make_channel(company, state="taken")

    with pytest.raises(ValidationFailed) as bad:
        make_channel(company, state="展会")
    with pytest.raises(Exception) as taken:
        make_channel(company, state="taken")

    assert str(bad.value.message) == (
        "The state may hold only letters, digits, - and _; change it or leave it empty to "
        "have one generated.")
    assert taken.value.code == "state_taken"
    assert sandbox.calls(ADD_WAY) == 1


def test_a_negative_cost_is_refused(company, sandbox):
    with pytest.raises(ValidationFailed) as exc:
        make_channel(company, cost="-1")

    assert str(exc.value.message) == "The cost cannot be negative; enter 0 for a free channel."


def test_a_wecom_refusal_stores_nothing(company, sandbox):
    from weiying.org.models import Employee

    Employee.objects.filter(pk=company.rep_a.pk).update(wecom_userid="nobody")
    company.rep_a.refresh_from_db()

    with pytest.raises(ValidationFailed) as exc:
        make_channel(company)

    assert exc.value.code == "wecom_refused"
    assert str(exc.value.message) == (
        "WeCom refused the channel code (one of the reps is not a member of the WeCom "
        "directory); nothing was saved. Fix that and create the channel again.")
    assert not Channel.objects.exists()
    assert not AuditLog.objects.filter(action="wechat.channel_create").exists()


def test_a_rep_without_a_wecom_account_is_refused_before_calling_wecom(company, sandbox):
    from weiying.org.models import Employee

    Employee.objects.filter(pk=company.rep_a.pk).update(wecom_userid="")
    company.rep_a.refresh_from_db()

    with pytest.raises(ValidationFailed) as exc:
        make_channel(company)

    assert str(exc.value.message) == (
        "李销售 has no WeCom account linked; sync the directory from WeCom or pick someone "
        "else.")
    assert sandbox.calls(ADD_WAY) == 0


def test_a_rep_may_not_create_channels(company, sandbox):
    with pytest.raises(PermissionDenied):
        channels.create_channel(actor=user_of(company.rep_a), name="自建",
                                members=[company.rep_a])


def test_a_manager_may_not_put_another_branchs_rep_behind_a_channel(company, sandbox):
    with pytest.raises(ValidationFailed) as exc:
        make_channel(company, members=[company.rep_b])

    assert str(exc.value.message) == (
        "You may only put people in your own scope behind a channel.")
    assert sandbox.calls(ADD_WAY) == 0


def test_editing_a_channel_updates_the_wecom_code(company, sandbox):
    channel = make_channel(company, members=[company.rep_a, company.rep_a2])

    channels.update_channel(actor=user_of(company.manager_a), channel=channel, name="新名字",
                            cost="300", members=[company.rep_a2], teams=[company.team_a],
                            skip_verify=False)

    way = sandbox.state.contact_ways[channel.config_id]
    assert (way.user, way.party, way.skip_verify, way.state) == (
        ["zhaoxs"], [31], False, channel.state)
    channel.refresh_from_db()
    assert (channel.name, channel.cost, channel.skip_verify) == ("新名字", Decimal("300.00"),
                                                                 False)
    assert list(channel.members.all()) == [company.rep_a2]
    assert AuditLog.objects.get(action="wechat.channel_update").before["name"] == "展会扫码"


def test_a_single_rep_code_cannot_take_more_reps(company, sandbox):
    channel = make_channel(company)

    with pytest.raises(ValidationFailed) as exc:
        channels.update_channel(actor=user_of(company.manager_a), channel=channel, name="x",
                                members=[company.rep_a, company.rep_a2])

    assert str(exc.value.message) == (
        "This channel's code was made for one rep, and WeCom cannot add more reps or teams "
        "to it. Keep one rep, or create a new channel for several.")
    assert sandbox.state.contact_ways[channel.config_id].user == ["lilei"]


def test_deactivating_a_channel_deletes_the_wecom_code(company, sandbox):
    channel = make_channel(company)

    channels.deactivate_channel(actor=user_of(company.manager_a), channel=channel)

    assert channel.config_id not in sandbox.state.contact_ways
    channel.refresh_from_db()
    assert not channel.is_active
    with pytest.raises(Exception) as again:
        channels.deactivate_channel(actor=user_of(company.manager_a), channel=channel)
    assert again.value.code == "channel_inactive"


def test_another_branchs_manager_cannot_edit_or_deactivate_the_channel(company, sandbox):
    channel = make_channel(company)

    with pytest.raises(NotFound):
        channels.deactivate_channel(actor=user_of(company.manager_b), channel=channel)
    assert channel.config_id in sandbox.state.contact_ways


# --- arrivals -------------------------------------------------------------------------------
def test_an_add_through_the_channel_delivered_four_times_gives_one_lead(company, sandbox):
    channel = make_channel(company)
    sandbox.api("/faults", {"duplicate_callbacks": {"count": 1, "copies": 4}})

    added = sandbox.api("/simulate/add_contact", {"config_id": channel.config_id,
                                                  "name": "刘客户"})
    inbox.drain()
    inbox.drain()

    assert sandbox.posted == [200, 200, 200, 200]
    lead = Lead.objects.get()
    assert (lead.owner, lead.source, lead.channel, lead.external_id) == (
        company.rep_a, "wecom", "展会扫码", f"wecom:{added['external_userid']}")
    arrival = ChannelArrival.objects.get()
    assert (arrival.channel, arrival.employee, arrival.lead) == (channel, company.rep_a, lead)
    assert DomainEvent.objects.filter(name="lead.assigned").count() == 1


def test_an_add_by_a_personal_code_is_no_arrival(company, sandbox):
    sandbox.api("/simulate/add_contact", {"userid": "lilei", "name": "私人", "state": "x"})
    inbox.drain()

    assert not ChannelArrival.objects.exists()


def test_a_deactivated_channels_state_records_nothing(company, sandbox):
    channel = make_channel(company)
    channels.deactivate_channel(actor=user_of(company.manager_a), channel=channel)

    got = channels.record_arrival(state=channel.state, external_id="wmX", employee=None,
                                  customer=None, at=timezone.now())

    assert got is None and not Lead.objects.exists()


# --- figures ---------------------------------------------------------------------------------
@pytest.fixture
def product(db: Any) -> Any:
    from weiying.catalog.models import Product

    return Product.objects.create(code="CH-1", name="渠道产品", category="软件",
                                  list_price=Decimal("1000.00"), vat_rate=Decimal("0.13"),
                                  lifecycle_days=10)


def signed_contract(customer: Any, product: Any, amount: str, paid: str) -> Any:
    from weiying.pipeline.services import contracts

    today = timezone.localdate()
    line = {"product": product, "quantity": Decimal(1), "unit_price": Decimal(amount)}
    contract = contracts.create_contract(actor=None, customer=customer, title="合同",
                                         lines=[line])
    contracts.submit_contract(actor=None, contract=contract)
    contracts.sign_contract(actor=None, contract=contract, signed_on=today)
    contracts.record_receipt(actor=None, contract=contract, amount=Decimal(paid),
                             received_on=today, method="bank", reference="回款")
    return contract


def test_figures_match_a_hand_computed_fixture(company, sandbox, product):
    from weiying.customers import services as customers
    from weiying.pipeline.services import opportunities

    expo = make_channel(company, name="展会", cost="1200.00")
    ads = make_channel(company, name="广告", cost="0", state="ads")
    idle = make_channel(company, name="闲置", cost="500", state="idle")
    # given: an old customer who bought before arriving through the expo (not counted) …
    old = customers.create_customer(actor=None, name="老客户", owner=company.rep_a,
                                    phone="13900000001")
    signed_contract(old, product, "5000.00", "5000.00")
    now = timezone.now()
    # … and three arrivals through the expo, one through ads
    for n, customer in enumerate([old, None, None]):
        channels.record_arrival(state=expo.state, external_id=f"wm-expo-{n}",
                                employee=company.rep_a, customer=customer, at=now)
    channels.record_arrival(state="ads", external_id="wm-ads-0", employee=company.rep_a2,
                            customer=None, at=now)
    # then: the old customer buys again, an opportunity and a contract, 600 of 2000 collected
    opportunities.create_opportunity(actor=None, customer=old, name="复购", amount=Decimal(2000),
                                     expected_close=timezone.localdate())
    signed_contract(old, product, "2000.00", "600.00")

    figures = channels.channel_figures([expo, ads, idle])

    assert figures[expo.pk] == {
        "adds": 3, "leads": 3, "opportunities": 1, "contracts": 1,
        "collected": Decimal("600.00"), "cost": Decimal("1200.00"),
        "cost_per_lead": Decimal("400.00"), "return": Decimal("0.50")}
    assert figures[ads.pk] == {
        "adds": 1, "leads": 1, "opportunities": 0, "contracts": 0,
        "collected": Decimal("0.00"), "cost": Decimal("0.00"),
        "cost_per_lead": Decimal("0.00"), "return": None}
    assert figures[idle.pk]["cost_per_lead"] is None and figures[idle.pk]["adds"] == 0


def test_a_converted_lead_brings_its_customers_figures(company, sandbox, product):
    from weiying.pipeline.services import leads

    expo = make_channel(company, name="展会", cost="100")
    arrival = channels.record_arrival(state=expo.state, external_id="wm-new", customer=None,
                                      employee=company.rep_a, at=timezone.now())
    customer, _opportunity = leads.convert_lead(actor=user_of(company.rep_a), lead=arrival.lead)
    signed_contract(customer, product, "1000.00", "250.00")

    figures = channels.channel_figures([expo])[expo.pk]

    assert (figures["opportunities"], figures["contracts"], figures["collected"],
            figures["return"]) == (1, 1, Decimal("250.00"), Decimal("2.50"))


# --- pages ------------------------------------------------------------------------------------
def test_the_list_shows_the_figures_with_a_fixed_number_of_queries(company, sandbox, login):
    web = login(company.manager_a, language="en")
    make_channel(company, name="甲渠道")
    web.get(reverse("wechat:channel_list"))  # warm the session and the role caches
    with CaptureQueriesContext(connection) as few:
        first = web.get(reverse("wechat:channel_list"))
    for n in range(4):
        make_channel(company, name=f"渠道{n}")
    with CaptureQueriesContext(connection) as many:
        second = web.get(reverse("wechat:channel_list"))

    assert first.status_code == second.status_code == 200
    assert len(second.context["rows"]) == 5
    assert len(many) == len(few)
    assert "甲渠道" in second.content.decode()


def test_the_figures_take_four_queries_for_any_number_of_channels(company, sandbox):
    made = [make_channel(company, name=f"渠道{n}") for n in range(6)]

    with CaptureQueriesContext(connection) as queries:
        channels.channel_figures(made)

    assert len(queries) == 4


def test_another_branchs_manager_neither_lists_nor_opens_easts_channels(company, sandbox, login):
    channel = make_channel(company, name="华东渠道")
    north = login(company.manager_b)

    listed = north.get(reverse("wechat:channel_list"))
    detail = north.get(reverse("wechat:channel_detail", args=[channel.pk]))
    image = north.get(reverse("wechat:channel_qr", args=[channel.pk]))

    assert listed.status_code == 200 and "华东渠道" not in listed.content.decode()
    assert detail.status_code == 404 and image.status_code == 404
    assert login(company.director).get(
        reverse("wechat:channel_detail", args=[channel.pk])).status_code == 200


def test_reps_get_no_channel_pages_and_no_menu_entry(company, sandbox, login):
    rep = login(company.rep_a)
    manager = login(company.manager_a)

    assert rep.get(reverse("wechat:channel_list")).status_code == 403
    assert reverse("wechat:channel_list") not in rep.get(reverse("web:home")).content.decode()
    assert reverse("wechat:channel_list") in manager.get(reverse("web:home")).content.decode()


def test_the_new_channel_page_creates_the_code(company, sandbox, login):
    web = login(company.manager_a, language="en")

    response = web.post(reverse("wechat:channel_new"), {
        "kind": "wecom", "name": "表单渠道", "cost": "88.00", "members": [company.rep_a.pk],
        "state": "", "skip_verify": "on"})

    channel = Channel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("wechat:channel_detail", args=[channel.pk])
    assert channel.config_id in sandbox.state.contact_ways


def test_the_new_channel_page_says_why_a_long_state_is_refused(company, sandbox, login):
    web = login(company.manager_a, language="en")

    response = web.post(reverse("wechat:channel_new"), {
        "kind": "wecom", "name": "表单渠道", "cost": "0", "members": [company.rep_a.pk],
        "state": "s" * 40})

    assert response.status_code == 200
    assert "WeChat accepts at most 30" in response.content.decode()
    assert not Channel.objects.exists() and sandbox.calls(ADD_WAY) == 0


def test_the_edit_page_saves_and_the_deactivate_button_withdraws(company, sandbox, login):
    channel = make_channel(company)
    web = login(company.manager_a, language="en")

    edited = web.post(reverse("wechat:channel_edit", args=[channel.pk]), {
        "name": "改名", "cost": "10", "members": [company.rep_a2.pk], "skip_verify": "on"})
    deactivated = web.post(reverse("wechat:channel_deactivate", args=[channel.pk]))

    assert edited.status_code == deactivated.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "改名" and not channel.is_active
    assert list(channel.members.all()) == [company.rep_a2]
    assert channel.config_id not in sandbox.state.contact_ways


def test_the_detail_shows_wecoms_own_picture_of_the_code(company, sandbox, login):
    channel = make_channel(company)
    channels.record_arrival(state=channel.state, external_id="wm1", employee=company.rep_a,
                            customer=None, at=timezone.now() - dt.timedelta(minutes=5))
    web = login(company.manager_a, language="en")

    page = web.get(reverse("wechat:channel_detail", args=[channel.pk]))
    picture = web.get(reverse("wechat:channel_qr", args=[channel.pk]), {"download": "1"})

    body = page.content.decode()
    qr = reverse("wechat:channel_qr", args=[channel.pk])
    assert page.status_code == 200 and f'<img src="{qr}"' in body
    assert "Download the code" in body
    assert "WeChat contact wm1" in body  # the arrival's lead
    # The picture is WeCom's (the sandbox's /sandbox/qr/<config_id>), fetched by the server.
    assert picture.status_code == 200
    assert picture["Content-Type"] == "image/svg+xml"
    assert picture.content == sandbox.http.get(channel.qr_url).content
    assert picture["Content-Disposition"] == f'attachment; filename="channel-{channel.pk}.svg"'


def test_an_oa_code_is_drawn_here_as_svg_and_png(company, sandbox, login):
    from weiying.wechat import oa

    channel = oa.create_oa_channel(actor=user_of(company.manager_a), name="公众号活动",
                                   state="oa-expo")
    web = login(company.manager_a, language="en")

    svg = web.get(reverse("wechat:channel_qr", args=[channel.pk]), {"format": "svg",
                                                                     "download": "1"})
    png = web.get(reverse("wechat:channel_qr", args=[channel.pk]), {"format": "png"})
    page = web.get(reverse("wechat:channel_detail", args=[channel.pk])).content.decode()

    assert "<svg" in page and "Download PNG" in page
    assert svg["Content-Type"] == "image/svg+xml" and svg.content.startswith(b"<?xml")
    assert svg["Content-Disposition"] == f'attachment; filename="channel-{channel.pk}.svg"'
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_list_exports_its_figures(company, sandbox, login):
    make_channel(company, name="导出渠道")
    web = login(company.manager_a, language="en")

    response = web.get(reverse("wechat:channel_list"), {"export": "csv"})

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Name,Kind,State,In use,Cost,Adds,Leads")
    assert "导出渠道" in text and "1200.00" in text
