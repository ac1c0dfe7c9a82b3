from __future__ import annotations

from .conftest import oa_token, seed_company, wecom_token


def test_seed_replaces_or_merges(client):
    seed_company(client)
    merged = client.post("/sandbox/api/seed", json={"users": [
        {"userid": "extra", "name": "多一位"}]}).json()
    replaced = client.post("/sandbox/api/seed", json={"mode": "replace", "users": [
        {"userid": "only", "name": "唯一"}]}).json()

    assert merged["counts"]["users"] == 5
    assert replaced["counts"]["users"] == 1
    assert replaced["counts"]["departments"] == 1  # a root is made for the users


def test_bad_seeds_are_refused(client):
    response = client.post("/sandbox/api/seed", json={"mode": "wipe"})

    assert response.status_code == 400 and response.json()["code"] == "bad_mode"


def test_calls_are_counted_per_path_until_reset(client):
    token = wecom_token(client)
    client.get("/wecom/cgi-bin/department/list", params={"access_token": token})
    client.get("/wecom/cgi-bin/department/list", params={"access_token": token})

    calls = client.get("/sandbox/api/calls").json()
    client.post("/sandbox/api/calls/reset")

    assert calls["calls"] == {"/wecom/cgi-bin/department/list": 2,
                              "/wecom/cgi-bin/gettoken": 1}
    assert client.get("/sandbox/api/calls").json()["total"] == 0


def test_config_can_be_set_and_is_checked(client, state):
    changed = client.post("/sandbox/api/config", json={
        "app_base_url": "http://demo:9000", "wecom_retry_seconds": [1, 2]})
    unknown = client.post("/sandbox/api/config", json={"colour": "red"})
    wrong = client.post("/sandbox/api/config", json={"callback_timeout": "soon"})

    assert changed.json()["changed"] == ["app_base_url", "wecom_retry_seconds"]
    assert state.config.wecom_retry_seconds == [1.0, 2.0]
    assert client.get("/sandbox/api/config").json()["app_base_url"] == "http://demo:9000"
    assert "pay_platform_private_key" not in client.get("/sandbox/api/config").json()
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_field"
    assert wrong.status_code == 400 and wrong.json()["code"] == "bad_value"


def test_state_counts_what_happened(client):
    seed_company(client)
    client.post("/sandbox/api/simulate/add_contact", json={"name": "张三", "userid": "rep_a"})

    counts = client.get("/sandbox/api/state").json()["counts"]

    assert counts["users"] == 4
    assert counts["external_contacts"] == counts["follows"] == counts["deliveries"] == 1
    assert counts["personas"] == 1


def test_the_pages_render(client):
    seed_company(client)
    token = wecom_token(client, "contact-secret")
    way = client.post("/wecom/cgi-bin/externalcontact/add_contact_way",
                      params={"access_token": token}, json={
                          "type": 1, "scene": 2, "state": "poster", "user": ["rep_a"]}).json()
    qr = client.post("/oa/cgi-bin/qrcode/create", params={"access_token": oa_token(client)},
                     json={"action_name": "QR_STR_SCENE", "expire_seconds": 600,
                           "action_info": {"scene": {"scene_str": "lead-1"}}}).json()
    persona = client.post("/sandbox/api/personas", json={"name": "王五"}).json()

    index = client.get("/sandbox/")
    phone = client.get(f"/sandbox/phone/{persona['id']}")
    scan = client.get(f"/sandbox/scan/{way['config_id']}")
    oa_scan = client.get(qr["url"].removeprefix("http://sandbox"))
    image = client.get("/oa-mp/cgi-bin/showqrcode", params={"ticket": qr["ticket"]})
    deliveries = client.get("/sandbox/deliveries")

    assert index.status_code == phone.status_code == scan.status_code == 200
    assert "王五" in index.text and "李雷" in index.text
    assert "poster" in phone.text and "lead-1" in phone.text
    assert oa_scan.status_code == deliveries.status_code == 200
    assert qr["expire_seconds"] == 600
    assert image.content.startswith(b"<svg")


def test_a_phone_scans_a_channel_code_and_pays(client, app_posts):
    seed_company(client)
    token = wecom_token(client, "contact-secret")
    way = client.post("/wecom/cgi-bin/externalcontact/add_contact_way",
                      params={"access_token": token}, json={
                          "type": 1, "scene": 2, "state": "poster", "user": ["rep_a"]}).json()
    persona = client.post("/sandbox/api/personas", json={"name": "王五"}).json()

    scanned = client.post(f"/sandbox/phone/{persona['id']}/scan/{way['config_id']}")
    client.post("/pay/v3/pay/transactions/native", headers={
        "Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109"'}, json={
        "appid": "wx1234567890abcdef", "mchid": "1900000109", "description": "定金",
        "out_trade_no": "WY7777777", "notify_url": "http://app/n", "amount": {"total": 100}})
    paid = client.post(f"/sandbox/phone/{persona['id']}/pay/WY7777777")
    page = client.get(scanned.headers["location"])
    log = client.get("/sandbox/deliveries")

    assert scanned.status_code == paid.status_code == 302
    assert "已扫码添加" in page.text and "李雷" in page.text
    assert "add_external_contact" in log.text and "TRANSACTION.SUCCESS" in log.text
    assert [p.path for p in app_posts.posts] == ["/wechat/callback/wecom-contacts", "/n"]


def test_a_scan_page_makes_a_new_persona(client, app_posts):
    seed_company(client)
    token = wecom_token(client, "contact-secret")
    way = client.post("/wecom/cgi-bin/externalcontact/add_contact_way",
                      params={"access_token": token}, json={
                          "type": 1, "scene": 2, "state": "s1", "user": ["rep_b"]}).json()

    done = client.post(f"/sandbox/scan/{way['config_id']}", data={"name": "赵六"})

    assert done.status_code == 302
    assert client.get("/sandbox/api/personas").json()["personas"][0]["name"] == "赵六"
    assert len(app_posts.posts) == 1


def test_template_messages_to_followers(client):
    token = oa_token(client)
    client.post("/sandbox/api/simulate/oa_scan", json={"openid": "oF1", "scene": "x"})

    sent = client.post("/oa/cgi-bin/message/template/send", params={"access_token": token},
                       json={"touser": "oF1", "template_id": "T1", "data": {}}).json()
    stranger = client.post("/oa/cgi-bin/message/template/send", params={"access_token": token},
                           json={"touser": "oNobody", "template_id": "T1"}).json()

    assert sent["errcode"] == 0
    assert stranger["errcode"] == 40003
    assert client.get("/sandbox/api/oa/messages").json()["messages"][0]["touser"] == "oF1"


def test_qrcode_create_checks_the_scene(client):
    token = oa_token(client)

    too_long = client.post("/oa/cgi-bin/qrcode/create", params={"access_token": token},
                           json={"action_name": "QR_LIMIT_STR_SCENE",
                                 "action_info": {"scene": {"scene_str": "x" * 65}}}).json()
    permanent = client.post("/oa/cgi-bin/qrcode/create", params={"access_token": token},
                            json={"action_name": "QR_LIMIT_STR_SCENE",
                                  "action_info": {"scene": {"scene_str": "x" * 64}}}).json()

    assert too_long["errcode"] == 40097
    assert "expire_seconds" not in permanent and permanent["ticket"]
