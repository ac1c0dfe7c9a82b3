from __future__ import annotations

from weiying.wechat.sandbox import SandboxConfig

from .conftest import seed_company, wecom_token

AGENT = SandboxConfig().agent_id


def _send(client, token, touser="rep_a", **content):
    body = {"touser": touser, "agentid": AGENT, "msgtype": "text",
            "text": {"content": "新线索：张三"}, **content}
    return client.post("/wecom/cgi-bin/message/send", params={"access_token": token},
                       json=body).json()


def test_the_31st_message_in_a_minute_is_accepted_and_dropped(client, clock):
    seed_company(client)
    token = wecom_token(client)

    answers = []
    for _ in range(31):
        answers.append(_send(client, token))
        clock.advance(1)
    shown = client.get("/sandbox/api/messages", params={"userid": "rep_a"}).json()

    assert all(a["errcode"] == 0 and a["msgid"] for a in answers)
    assert shown["count"] == 31
    assert shown["dropped"] == 1
    assert shown["messages"][0]["dropped"] is True  # newest first
    assert shown["messages"][0]["reason"] == "per_minute_limit"


def test_a_member_gets_messages_again_after_the_minute(client, clock):
    seed_company(client)
    token = wecom_token(client)
    for _ in range(30):
        _send(client, token)

    clock.advance(60)
    _send(client, token)

    assert client.get("/sandbox/api/messages").json()["dropped"] == 0


def test_the_hourly_limit_drops_too(client, clock, state):
    seed_company(client)
    state.config.message_per_hour = 40
    token = wecom_token(client)

    for _ in range(41):
        _send(client, token)
        clock.advance(30)
    shown = client.get("/sandbox/api/messages").json()

    assert shown["dropped"] == 1
    assert shown["messages"][0]["reason"] == "per_hour_limit"


def test_limits_are_per_member(client):
    seed_company(client)
    token = wecom_token(client)
    for _ in range(30):
        _send(client, token)

    _send(client, token, touser="rep_b")

    assert client.get("/sandbox/api/messages", params={"userid": "rep_b"}).json()[
        "dropped"] == 0


def test_unknown_recipients_and_bad_sends(client):
    seed_company(client)
    token = wecom_token(client)

    partly = _send(client, token, touser="rep_a|ghost")
    nobody = _send(client, token, touser="ghost")
    wrong_agent = _send(client, token, agentid="999")
    wrong_type = _send(client, token, msgtype="voice")
    empty = _send(client, token, text={"content": " "})

    assert partly["errcode"] == 0 and partly["invaliduser"] == "ghost"
    assert nobody["errcode"] == 81013
    assert wrong_agent["errcode"] == 40056
    assert wrong_type["errcode"] == 40008
    assert empty["errcode"] == 44004


def test_inbox_page_shows_cards_newest_first_and_marks_dropped(client, state):
    seed_company(client)
    state.config.message_per_minute = 2
    token = wecom_token(client)
    _send(client, token, msgtype="textcard", textcard={
        "title": "新线索分配", "description": "<div class=\"gray\">今天</div>客户：张三",
        "url": "http://app/leads/1", "btntxt": "查看"})
    _send(client, token, msgtype="markdown", markdown={"content": "**跟进提醒** 李四"})
    _send(client, token, msgtype="template_card", template_card={
        "card_type": "text_notice", "main_title": {"title": "回款到账"},
        "horizontal_content_list": [{"keyname": "金额", "value": "¥1,280.00"}]})

    page = client.get("/sandbox/inbox/rep_a").text

    assert page.index("回款到账") < page.index("跟进提醒") < page.index("新线索分配")
    assert "已丢弃" in page
    assert "客户：张三" in page and "&lt;div" not in page
    assert "¥1,280.00" in page
