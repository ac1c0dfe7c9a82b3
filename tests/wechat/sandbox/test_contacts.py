from __future__ import annotations

from .conftest import seed_company, wecom_token


def _seed_customers(client, count, userid="rep_a", start=0):
    client.post("/sandbox/api/seed", json={"external_contacts": [
        {"external_userid": f"wm{i:04d}", "name": f"客户{i}", "unionid": f"ou{i:04d}",
         "follow_user": [{"userid": userid, "createtime": 1_700_000_000 + i,
                          "state": "spring", "tags": [{"tag_id": "et1", "tag_name": "VIP"}]}]}
        for i in range(start, start + count)]})


def test_batch_get_by_user_walks_250_customers_with_a_cursor(client):
    seed_company(client)
    _seed_customers(client, 250)
    token = wecom_token(client, "contact-secret")

    seen, cursor, pages = [], "", 0
    while True:
        page = client.post("/wecom/cgi-bin/externalcontact/batch/get_by_user",
                           params={"access_token": token},
                           json={"userid_list": ["rep_a", "rep_b"], "cursor": cursor,
                                 "limit": 100}).json()
        assert page["errcode"] == 0
        seen += [row["external_contact"]["external_userid"]
                 for row in page["external_contact_list"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert pages == 3
    assert seen == [f"wm{i:04d}" for i in range(250)]
    first = page["external_contact_list"][0]
    assert first["follow_info"]["userid"] == "rep_a"
    assert first["follow_info"]["state"] == "spring"
    assert first["follow_info"]["tag_id"] == ["et1"]
    assert first["external_contact"]["unionid"] == "ou0200"


def test_batch_get_by_user_limits(client):
    token = wecom_token(client, "contact-secret")
    url = "/wecom/cgi-bin/externalcontact/batch/get_by_user"

    too_many_users = client.post(url, params={"access_token": token}, json={
        "userid_list": [f"u{i}" for i in range(101)]}).json()
    too_big_a_page = client.post(url, params={"access_token": token}, json={
        "userid_list": ["rep_a"], "limit": 101}).json()

    assert too_many_users["errcode"] == 40058
    assert too_big_a_page["errcode"] == 40058


def test_externalcontact_get_pages_follow_user_after_500(client):
    client.post("/sandbox/api/seed", json={
        "users": [{"userid": f"u{i:03d}", "name": f"员工{i}"} for i in range(501)],
        "external_contacts": [{"external_userid": "wmbig", "name": "大客户", "follow_user": [
            {"userid": f"u{i:03d}", "createtime": 1_700_000_000 + i} for i in range(501)]}],
    })
    token = wecom_token(client, "contact-secret")

    first = client.get("/wecom/cgi-bin/externalcontact/get",
                       params={"access_token": token, "external_userid": "wmbig"}).json()
    second = client.get("/wecom/cgi-bin/externalcontact/get", params={
        "access_token": token, "external_userid": "wmbig",
        "cursor": first["next_cursor"]}).json()

    assert len(first["follow_user"]) == 500
    assert [f["userid"] for f in second["follow_user"]] == ["u500"]
    assert "next_cursor" not in second
    assert first["external_contact"]["name"] == "大客户"


def test_list_and_follow_user_list(client):
    seed_company(client)
    _seed_customers(client, 3)
    token = wecom_token(client, "contact-secret")

    listed = client.get("/wecom/cgi-bin/externalcontact/list",
                        params={"access_token": token, "userid": "rep_a"}).json()
    nobody = client.get("/wecom/cgi-bin/externalcontact/list",
                        params={"access_token": token, "userid": "rep_b"}).json()
    followers = client.get("/wecom/cgi-bin/externalcontact/get_follow_user_list",
                           params={"access_token": token}).json()
    unknown = client.get("/wecom/cgi-bin/externalcontact/get",
                         params={"access_token": token, "external_userid": "wmnope"}).json()

    assert listed["external_userid"] == ["wm0000", "wm0001", "wm0002"]
    assert nobody["errcode"] == 84061
    assert followers["follow_user"] == ["manager", "rep_a", "rep_b"]
    assert unknown["errcode"] == 40096
