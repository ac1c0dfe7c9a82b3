from __future__ import annotations

import pytest

from weiying.wechat import crypto
from weiying.wechat.sandbox import SandboxConfig

from .conftest import open_callback, open_oa_callback, seed_company, wecom_token

CONFIG = SandboxConfig()


def _add(client, **body):
    response = client.post("/sandbox/api/simulate/add_contact", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_add_contact_posts_add_external_contact(client, app_posts):
    seed_company(client)

    added = _add(client, name="张三", unionid="ouZS", userid="rep_a", state="expo2026")

    [posted] = app_posts.posts
    fields = open_callback(posted)
    assert posted.url.startswith("http://127.0.0.1:8000/wechat/callback/wecom-contacts?")
    assert set(posted.query) == {"msg_signature", "timestamp", "nonce"}
    assert fields["ToUserName"] == CONFIG.corp_id
    assert fields["FromUserName"] == "sys"
    assert fields["MsgType"] == "event"
    assert fields["Event"] == "change_external_contact"
    assert fields["ChangeType"] == "add_external_contact"
    assert fields["UserID"] == "rep_a"
    assert fields["ExternalUserID"] == added["external_userid"]
    assert fields["State"] == "expo2026"
    assert fields["WelcomeCode"] == added["welcome_code"]


def test_the_signature_is_checked_over_the_envelope(client, app_posts):
    seed_company(client)
    _add(client, name="张三", userid="rep_a")
    posted = app_posts.posts[0]
    box = crypto.CallbackCrypto(CONFIG.callback_token, CONFIG.callback_aes_key, CONFIG.corp_id)
    q = posted.query

    with pytest.raises(crypto.CryptoError) as refused:
        box.decrypt(q["msg_signature"], q["timestamp"], "another-nonce",
                    crypto.envelope_encrypt(posted.body))

    assert refused.value.code == "bad_signature"


def test_the_added_customer_is_then_served_by_the_api(client):
    seed_company(client)
    added = _add(client, name="张三", unionid="ouZS", userid="rep_a", state="expo")
    token = wecom_token(client, "contact-secret")

    contact = client.get("/wecom/cgi-bin/externalcontact/get", params={
        "access_token": token, "external_userid": added["external_userid"]}).json()

    assert contact["external_contact"]["name"] == "张三"
    assert contact["external_contact"]["unionid"] == "ouZS"
    assert contact["follow_user"][0]["state"] == "expo"


def test_scanning_a_channel_code_uses_its_state_and_members(client, app_posts):
    seed_company(client)
    token = wecom_token(client, "contact-secret")
    way = client.post("/wecom/cgi-bin/externalcontact/add_contact_way",
                      params={"access_token": token}, json={
                          "type": 2, "scene": 2, "state": "ch42", "user": ["rep_a", "rep_b"]}
                      ).json()

    _add(client, name="甲", config_id=way["config_id"])
    _add(client, name="乙", config_id=way["config_id"])

    first, second = (open_callback(p) for p in app_posts.posts)
    assert first["State"] == second["State"] == "ch42"
    assert [first["UserID"], second["UserID"]] == ["rep_a", "rep_b"]


def test_adding_the_same_rep_twice_is_refused(client):
    seed_company(client)
    added = _add(client, name="张三", userid="rep_a")

    again = client.post("/sandbox/api/simulate/add_contact", json={
        "external_userid": added["external_userid"], "userid": "rep_a"})

    assert again.status_code == 409
    assert again.json()["code"] == "already_added"


@pytest.mark.parametrize(("by", "change"), [("employee", "del_external_contact"),
                                             ("customer", "del_follow_user")])
def test_removal_names_who_removed_whom(client, app_posts, by, change):
    seed_company(client)
    added = _add(client, name="张三", userid="rep_a")

    response = client.post("/sandbox/api/simulate/remove", json={
        "external_userid": added["external_userid"], "userid": "rep_a", "by": by})

    fields = open_callback(app_posts.posts[-1])
    assert response.json()["change"] == change
    assert fields["ChangeType"] == change
    assert fields["UserID"] == "rep_a"
    assert fields["ExternalUserID"] == added["external_userid"]


def test_edit_contact_posts_edit_external_contact(client, app_posts):
    seed_company(client)
    added = _add(client, name="张三", userid="rep_a")

    client.post("/sandbox/api/simulate/edit_contact", json={
        "external_userid": added["external_userid"], "userid": "rep_a", "remark": "张总"})

    fields = open_callback(app_posts.posts[-1])
    assert fields["ChangeType"] == "edit_external_contact"
    assert fields["UserID"] == "rep_a"


def test_directory_changes_post_change_contact_to_the_app_callback(client, app_posts):
    seed_company(client)

    client.post("/sandbox/api/simulate/directory", json={
        "change": "create_user", "userid": "rep_c", "name": "新人", "department": [3, 2],
        "is_leader_in_dept": [0, 1], "direct_leader": ["manager"], "position": "销售"})
    client.post("/sandbox/api/simulate/directory", json={
        "change": "update_user", "userid": "rep_c", "position": "高级销售"})
    client.post("/sandbox/api/simulate/directory", json={
        "change": "create_party", "id": 5, "name": "华南组", "parentid": 2})
    client.post("/sandbox/api/simulate/directory", json={
        "change": "delete_user", "userid": "rep_c"})

    created, updated, party, deleted = (open_callback(p) for p in app_posts.posts)
    assert app_posts.posts[0].path == "/wechat/callback/wecom"
    assert crypto.parse_xml(app_posts.posts[0].body)["AgentID"] == CONFIG.agent_id
    assert created["Event"] == "change_contact"
    assert created["ChangeType"] == "create_user"
    assert (created["UserID"], created["Name"], created["Department"]) == ("rep_c", "新人", "3,2")
    assert (created["MainDepartment"], created["IsLeaderInDept"]) == ("3", "0,1")
    assert (created["DirectLeader"], created["Position"]) == ("manager", "销售")
    assert updated["ChangeType"] == "update_user" and updated["Position"] == "高级销售"
    assert "Name" not in updated  # only what changed
    assert (party["ChangeType"], party["Id"], party["Name"], party["ParentId"]) == (
        "create_party", "5", "华南组", "2")
    assert deleted["ChangeType"] == "delete_user" and deleted["UserID"] == "rep_c"


def test_directory_events_can_carry_ids_only(client, app_posts, state):
    seed_company(client)
    state.config.directory_events_ids_only = True

    client.post("/sandbox/api/simulate/directory", json={
        "change": "create_user", "userid": "rep_c", "name": "新人"})

    fields = open_callback(app_posts.posts[0])
    assert fields["UserID"] == "rep_c" and "Name" not in fields


def test_oa_scan_subscribes_then_scans(client, app_posts):
    first = client.post("/sandbox/api/simulate/oa_scan", json={
        "openid": "oFAN1", "unionid": "ouFAN1", "scene": "lead-77", "first_time": True}).json()
    client.post("/sandbox/api/simulate/oa_scan", json={
        "openid": "oFAN1", "scene": "lead-78", "first_time": False})

    subscribe, scan = (open_oa_callback(p) for p in app_posts.posts)
    assert app_posts.posts[0].path == "/wechat/callback/oa"
    assert app_posts.posts[0].query["openid"] == "oFAN1"
    assert first["event"] == "subscribe"
    assert subscribe["ToUserName"] == CONFIG.oa_original_id
    assert subscribe["FromUserName"] == "oFAN1"
    assert (subscribe["MsgType"], subscribe["Event"]) == ("event", "subscribe")
    assert subscribe["EventKey"] == "qrscene_lead-77"
    assert (scan["Event"], scan["EventKey"]) == ("SCAN", "lead-78")


def test_oa_scan_of_a_created_code_carries_its_ticket(client, app_posts):
    from .conftest import oa_token

    token = oa_token(client)
    qr = client.post("/oa/cgi-bin/qrcode/create", params={"access_token": token}, json={
        "action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "c9"}}}
    ).json()

    client.post("/sandbox/api/simulate/oa_scan", json={"openid": "oFAN2", "ticket": qr["ticket"]})

    fields = open_oa_callback(app_posts.posts[0])
    assert fields["EventKey"] == "qrscene_c9"
    assert fields["Ticket"] == qr["ticket"]
    info = client.get("/oa/cgi-bin/user/info",
                      params={"access_token": token, "openid": "oFAN2"}).json()
    assert info["subscribe"] == 1 and info["qr_scene_str"] == "c9"


def test_oa_text_and_unsubscribe(client, app_posts):
    client.post("/sandbox/api/simulate/oa_scan", json={"openid": "oFAN3", "scene": "x"})

    sent = client.post("/sandbox/api/simulate/oa_text",
                       json={"openid": "oFAN3", "content": "价格多少？"}).json()
    client.post("/sandbox/api/simulate/oa_unsubscribe", json={"openid": "oFAN3"})
    after = client.post("/sandbox/api/simulate/oa_text", json={"openid": "oFAN3",
                                                              "content": "在吗"})

    _subscribe, text, unsubscribe = (open_oa_callback(p) for p in app_posts.posts)
    assert (text["MsgType"], text["Content"], text["MsgId"]) == ("text", "价格多少？",
                                                                  sent["msg_id"])
    assert unsubscribe["Event"] == "unsubscribe"
    assert after.status_code == 409


def test_oa_without_an_aes_key_posts_plain_xml(client, app_posts, state):
    state.config.oa_aes_key = ""

    client.post("/sandbox/api/simulate/oa_scan", json={"openid": "oFAN4", "scene": "x"})

    posted = app_posts.posts[0]
    assert "encrypt_type" not in posted.query
    assert crypto.parse_xml(posted.body)["Event"] == "subscribe"


def test_resigned_transfer_moves_customers_or_fails_with_a_callback(client, app_posts, state):
    seed_company(client)
    ok_contact = _add(client, name="甲", userid="rep_a")["external_userid"]
    client.post("/sandbox/api/simulate/directory", json={"change": "delete_user",
                                                         "userid": "rep_a"})
    token = wecom_token(client, "contact-secret")
    url = "/wecom/cgi-bin/externalcontact/resigned/"

    unassigned = client.post("/wecom/cgi-bin/externalcontact/get_unassigned_list",
                             params={"access_token": token}, json={}).json()
    started = client.post(url + "transfer_customer", params={"access_token": token}, json={
        "handover_userid": "rep_a", "takeover_userid": "rep_b",
        "external_userid": [ok_contact, "wmnope"]}).json()
    result = client.post(url + "transfer_result", params={"access_token": token}, json={
        "handover_userid": "rep_a", "takeover_userid": "rep_b"}).json()

    assert unassigned["info"][0]["external_userid"] == ok_contact
    assert [c["errcode"] for c in started["customer"]] == [0, 40096]
    assert result["customer"][0]["status"] == 1
    assert "takeover_time" in result["customer"][0]
    listed = client.get("/wecom/cgi-bin/externalcontact/list",
                        params={"access_token": token, "userid": "rep_b"}).json()
    assert listed["external_userid"] == [ok_contact]

    # given a successor who is full, the next transfer fails and says so
    state.config.transfer_fail_share = 1.0
    other = _add(client, name="乙", userid="manager")["external_userid"]
    client.post("/sandbox/api/simulate/directory", json={"change": "delete_user",
                                                         "userid": "manager"})
    client.post(url + "transfer_customer", params={"access_token": token}, json={
        "handover_userid": "manager", "takeover_userid": "rep_b", "external_userid": [other]})
    failed = client.post(url + "transfer_result", params={"access_token": token}, json={
        "handover_userid": "manager", "takeover_userid": "rep_b"}).json()

    fields = open_callback(app_posts.posts[-1])
    assert failed["customer"][0]["status"] == 3
    assert (fields["ChangeType"], fields["FailReason"]) == ("transfer_fail", "customer_refused")
    assert (fields["UserID"], fields["ExternalUserID"]) == ("rep_b", other)


def test_a_member_still_employed_cannot_be_inherited(client):
    seed_company(client)
    contact = _add(client, name="甲", userid="rep_a")["external_userid"]
    token = wecom_token(client, "contact-secret")

    answer = client.post("/wecom/cgi-bin/externalcontact/resigned/transfer_customer",
                         params={"access_token": token}, json={
                             "handover_userid": "rep_a", "takeover_userid": "rep_b",
                             "external_userid": [contact]}).json()

    assert answer["errcode"] == 40097


def test_waiting_transfers_settle_later(client, state, clock):
    seed_company(client)
    state.config.transfer_seconds = 86400
    contact = _add(client, name="甲", userid="rep_a")["external_userid"]
    client.post("/sandbox/api/simulate/directory", json={"change": "delete_user",
                                                         "userid": "rep_a"})
    token = wecom_token(client, "contact-secret")
    url = "/wecom/cgi-bin/externalcontact/resigned/"
    body = {"handover_userid": "rep_a", "takeover_userid": "rep_b"}
    client.post(url + "transfer_customer", params={"access_token": token},
                json={**body, "external_userid": [contact]})

    waiting = client.post(url + "transfer_result", params={"access_token": token},
                          json=body).json()
    clock.advance(86400)
    done = client.post(url + "transfer_result", params={"access_token": wecom_token(
        client, "contact-secret")}, json=body).json()

    assert waiting["customer"][0]["status"] == 2
    assert done["customer"][0]["status"] == 1
