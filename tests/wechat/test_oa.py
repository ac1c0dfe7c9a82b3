"""Official Account campaign codes and followers against the sandbox: the code is made with
qrcode/create; subscribe and SCAN callbacks upsert the follower, link it to a customer by
union id and attribute one lead to the channel, however often they are delivered."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import user_of
from tests.wechat.channel_world import english_fixture, sandbox_fixture  # noqa: F401
from weiying.core.errors import ValidationFailed
from weiying.customers.models import WeChatIdentity
from weiying.pipeline.models import Lead
from weiying.wechat import inbox, oa
from weiying.wechat.models import Channel, ChannelArrival, Follower

pytestmark = pytest.mark.django_db

OPENID = "oSandboxFollower0000000001"


def campaign(company: Any, state: str = "spring-expo") -> Channel:
    return oa.create_oa_channel(actor=user_of(company.manager_a), name="春季展会",
                                cost="800", state=state)


def scan(box: Any, scene: str = "spring-expo", **fields: Any) -> dict[str, Any]:
    answer = box.api("/simulate/oa_scan", {"openid": OPENID, "scene": scene, **fields})
    inbox.drain()
    return answer


def test_a_campaign_code_is_a_permanent_string_scene_qr_code(company, sandbox, settings):
    channel = campaign(company)

    ticket = sandbox.state.qr_tickets[channel.qr_ticket]
    assert (ticket.action_name, ticket.scene) == ("QR_LIMIT_STR_SCENE", "spring-expo")
    assert (channel.kind, channel.config_id) == ("oa", "")
    assert channel.qr_url == f"http://sandbox/sandbox/oa/scan/{channel.qr_ticket}"
    assert oa.qr_image_url(channel.qr_ticket).startswith(
        "http://sandbox/oa-mp/cgi-bin/showqrcode?ticket=gQ")
    image = sandbox.http.get(oa.qr_image_url(channel.qr_ticket).removeprefix("http://sandbox"))
    assert image.status_code == 200


def test_a_scene_longer_than_64_characters_is_refused_before_calling_wechat(company, sandbox):
    with pytest.raises(ValidationFailed) as exc:
        campaign(company, state="s" * 65)

    assert str(exc.value.message) == (
        "The state is 65 characters long; WeChat accepts at most 64. Shorten it or leave it "
        "empty to have one generated.")
    assert not sandbox.state.qr_tickets


def test_subscribing_through_the_code_makes_a_follower_and_an_attributed_lead(company,
                                                                               sandbox):
    channel = campaign(company)

    answer = scan(sandbox)

    assert answer["event"] == "subscribe"
    follower = Follower.objects.get()
    assert (follower.openid, follower.subscribed, follower.channel) == (OPENID, True, channel)
    lead = Lead.objects.get()
    assert (lead.source, lead.channel, lead.external_id, lead.owner) == (
        "oa", "春季展会", f"oa:{OPENID}", None)
    assert lead.department == company.team_a  # waits in the campaign owner's team queue
    assert ChannelArrival.objects.get().lead == lead


def test_a_scan_by_a_follower_gives_no_second_lead(company, sandbox):
    campaign(company)
    scan(sandbox)

    again = scan(sandbox)

    assert again["event"] == "SCAN"
    assert Lead.objects.count() == 1 and ChannelArrival.objects.count() == 1
    assert Follower.objects.count() == 1


def test_a_subscribe_delivered_three_times_counts_once(company, sandbox):
    campaign(company)
    sandbox.api("/faults", {"duplicate_callbacks": {"count": 1, "copies": 3}})

    scan(sandbox)

    assert sandbox.posted == [200, 200, 200]
    assert (Follower.objects.count(), Lead.objects.count(),
            ChannelArrival.objects.count()) == (1, 1, 1)


def test_the_union_id_links_the_follower_to_an_existing_customer(company, sandbox):
    from weiying.customers import services as customers

    known = customers.create_customer(actor=None, name="老朋友", owner=company.rep_a2,
                                      phone="13900000009")
    customers.add_identity(actor=None, customer=known, kind="unionid", value="oUnion-77")
    campaign(company)

    scan(sandbox, unionid="oUnion-77")

    follower = Follower.objects.get()
    assert (follower.unionid, follower.customer) == ("oUnion-77", known)
    lead = Lead.objects.get()
    assert (lead.customer, lead.owner, lead.name) == (known, company.rep_a2, "老朋友")
    assert WeChatIdentity.objects.filter(kind="openid", value=OPENID,
                                         customer=known).exists()


def test_a_plain_follow_makes_a_follower_and_no_lead(company, sandbox):
    scan(sandbox, scene="")

    assert Follower.objects.get().channel is None
    assert not Lead.objects.exists()


def test_unsubscribing_keeps_the_follower(company, sandbox):
    campaign(company)
    scan(sandbox)

    sandbox.api("/simulate/oa_unsubscribe", {"openid": OPENID})
    inbox.drain()

    follower = Follower.objects.get()
    assert not follower.subscribed and follower.unsubscribed_at is not None
    assert Lead.objects.count() == 1


def test_a_follower_who_comes_back_is_subscribed_again_without_a_new_lead(company, sandbox):
    campaign(company)
    scan(sandbox)
    sandbox.api("/simulate/oa_unsubscribe", {"openid": OPENID})
    inbox.drain()
    sandbox.state.clock = lambda: time.time() + 60  # a minute later

    scan(sandbox)

    assert Follower.objects.get().subscribed
    assert Lead.objects.count() == 1


def test_a_text_from_a_follower_is_kept_in_the_inbox_unhandled(company, sandbox):
    from weiying.pipeline.models import FollowUp
    from weiying.wechat.models import InboxMessage

    scan(sandbox, scene="")
    sandbox.api("/simulate/oa_text", {"openid": OPENID, "content": "你好"})
    inbox.drain()

    assert InboxMessage.objects.get(kind="msg:text").status == "ignored"
    assert not FollowUp.objects.exists()


def test_the_campaign_page_shows_its_code_and_wechats_image(company, sandbox, login):
    channel = campaign(company)
    web = login(company.manager_a, language="en")

    page = web.get(reverse("wechat:channel_detail", args=[channel.pk]))

    body = page.content.decode()
    assert page.status_code == 200 and "<svg" in body
    assert "http://sandbox/oa-mp/cgi-bin/showqrcode?ticket=" in body


def test_the_new_channel_page_makes_an_official_account_code(company, sandbox, login):
    web = login(company.manager_a, language="en")

    response = web.post(reverse("wechat:channel_new"), {
        "kind": "oa", "name": "公众号活动", "cost": "0", "state": "oa-campaign"})

    channel = Channel.objects.get()
    assert response.status_code == 302
    assert (channel.kind, channel.state) == ("oa", "oa-campaign")
    assert channel.qr_ticket in sandbox.state.qr_tickets
