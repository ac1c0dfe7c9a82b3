from __future__ import annotations

from .conftest import seed_company, wecom_token


def test_department_list_gives_all_or_a_subtree(client):
    seed_company(client)
    token = wecom_token(client)

    everything = client.get("/wecom/cgi-bin/department/list",
                            params={"access_token": token}).json()
    sales = client.get("/wecom/cgi-bin/department/list",
                       params={"access_token": token, "id": 2}).json()
    missing = client.get("/wecom/cgi-bin/department/list",
                         params={"access_token": token, "id": 99}).json()

    assert [d["id"] for d in everything["department"]] == [1, 2, 3, 4]
    assert [d["id"] for d in sales["department"]] == [2, 3]
    assert everything["department"][1] == {"id": 2, "name": "销售部", "parentid": 1,
                                            "order": 1, "department_leader": []}
    assert missing["errcode"] == 60123


def test_user_list_id_pages_with_a_cursor(client):
    client.post("/sandbox/api/seed", json={"users": [
        {"userid": f"u{i:02d}", "name": f"员工{i}", "department": [1]} for i in range(25)]})
    token = wecom_token(client)

    seen, cursor, pages = [], "", 0
    while True:
        page = client.post("/wecom/cgi-bin/user/list_id", params={"access_token": token},
                           json={"cursor": cursor, "limit": 10}).json()
        assert page["errcode"] == 0
        seen += [row["userid"] for row in page["dept_user"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert pages == 3
    assert seen == [f"u{i:02d}" for i in range(25)]


def test_user_list_id_refuses_a_cursor_it_did_not_issue(client):
    token = wecom_token(client)

    answer = client.post("/wecom/cgi-bin/user/list_id", params={"access_token": token},
                         json={"cursor": "forged", "limit": 10}).json()

    assert answer["errcode"] == 40058


def test_user_get_has_no_mobile_email_or_avatar(client):
    seed_company(client)
    token = wecom_token(client)

    user = client.get("/wecom/cgi-bin/user/get",
                      params={"access_token": token, "userid": "rep_b"}).json()
    missing = client.get("/wecom/cgi-bin/user/get",
                         params={"access_token": token, "userid": "ghost"}).json()

    assert user["errcode"] == 0
    assert user["name"] == "韩梅梅"
    assert user["department"] == [3, 4]
    assert user["main_department"] == 3
    assert user["is_leader_in_dept"] == [0, 0]
    assert user["direct_leader"] == ["manager"]
    assert not {"mobile", "email", "avatar", "gender", "biz_mail"} & set(user)
    assert missing["errcode"] == 60111
