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


# --- The follow index -------------------------------------------------------------------


def _scan(state, *, userid=None, external_userid=None):
    """What the index must agree with: a scan of every follow."""
    rows = [f for f in state.follows.values()
            if (userid is None or f.userid == userid)
            and (external_userid is None or f.external_userid == external_userid)]
    if userid is not None:
        return sorted(rows, key=lambda f: (f.createtime, f.external_userid))
    return sorted(rows, key=lambda f: (f.createtime, f.userid))


def _agrees(state):
    users = {f.userid for f in state.follows.values()} | set(state.users) | {"rep_x"}
    contacts = {f.external_userid for f in state.follows.values()} | set(state.contacts)
    for userid in users:
        assert state.follows_of_user(userid) == _scan(state, userid=userid), userid
    for ext in contacts:
        assert state.follows_of_contact(ext) == _scan(state, external_userid=ext), ext
        assert state.follows.has_contact(ext) == bool(_scan(state, external_userid=ext))


def test_the_follow_index_keeps_up_with_every_write(client, state):
    seed_company(client)
    _seed_customers(client, 5)
    _seed_customers(client, 3, userid="rep_b", start=3)  # wm0003, wm0004 shared
    _agrees(state)

    client.post("/sandbox/api/simulate/add_contact",
                json={"userid": "rep_b", "external_userid": "wm0000"})
    client.post("/sandbox/api/simulate/remove",
                json={"userid": "rep_a", "external_userid": "wm0001", "by": "customer"})
    _agrees(state)

    client.post("/sandbox/api/simulate/directory",
                json={"change": "update_user", "userid": "rep_a", "new_userid": "rep_x"})
    assert [f.external_userid for f in state.follows_of_user("rep_x")] == [
        "wm0000", "wm0002", "wm0003", "wm0004"]
    assert state.follows_of_user("rep_a") == []
    _agrees(state)

    client.post("/sandbox/api/simulate/directory",
                json={"change": "delete_user", "userid": "rep_x"})
    token = wecom_token(client, "contact-secret")
    client.post("/wecom/cgi-bin/externalcontact/resigned/transfer_customer",
                params={"access_token": token},
                json={"handover_userid": "rep_x", "takeover_userid": "manager",
                      "external_userid": ["wm0002"]})
    client.post("/sandbox/api/simulate/transfers")
    assert [f.userid for f in state.follows_of_contact("wm0002")] == ["manager"]
    _agrees(state)

    del state.follows[("wm0000", "rep_b")]
    state.follows.pop(("wm0003", "rep_b"))
    _agrees(state)

    client.post("/sandbox/api/seed", json={"mode": "replace", "users": [
        {"userid": "rep_a", "name": "李雷"}]})
    assert len(state.follows) == 0 and state.follows_of_user("rep_x") == []
    _agrees(state)


class _Counting(dict):
    reads = 0

    def __getitem__(self, key):
        type(self).reads += 1
        return super().__getitem__(key)

    def values(self):
        raise AssertionError("a scan of every follow")


def test_one_reps_follows_cost_what_they_hold_not_a_scan_of_the_world(client, state):
    seed_company(client)
    _seed_customers(client, 2000, userid="rep_b")
    _seed_customers(client, 3, start=5000)
    state.follows._rows = _Counting(state.follows._rows)
    token = wecom_token(client, "contact-secret")

    page = client.post("/wecom/cgi-bin/externalcontact/batch/get_by_user",
                       params={"access_token": token},
                       json={"userid_list": ["rep_a"], "limit": 100}).json()
    one = client.get("/wecom/cgi-bin/externalcontact/get",
                     params={"access_token": token, "external_userid": "wm5001"}).json()

    assert len(page["external_contact_list"]) == 3 and not page["next_cursor"]
    assert [f["userid"] for f in one["follow_user"]] == ["rep_a"]
    assert _Counting.reads <= 3 + 3 + 1  # the rep's three, their answer, the contact's one


def test_a_change_between_pages_shows_on_the_next_page(client, state):
    seed_company(client)
    _seed_customers(client, 150)
    token = wecom_token(client, "contact-secret")
    url = "/wecom/cgi-bin/externalcontact/batch/get_by_user"

    first = client.post(url, params={"access_token": token},
                        json={"userid_list": ["rep_a"], "limit": 100}).json()
    _seed_customers(client, 1, start=900)
    second = client.post(url, params={"access_token": token}, json={
        "userid_list": ["rep_a"], "limit": 100, "cursor": first["next_cursor"]}).json()

    assert len(second["external_contact_list"]) == 51
    assert second["external_contact_list"][-1]["external_contact"]["external_userid"] == "wm0900"


# --- The corp tag library ---------------------------------------------------------------

LIBRARY = [
    {"group_id": "etGRADE", "group_name": "客户等级", "order": 2, "tag": [
        {"id": "etVIP", "name": "重要客户", "order": 2},
        {"id": "etNORMAL", "name": "普通客户", "order": 1},
        {"id": "etOLD", "name": "旧等级", "deleted": True}]},
    {"group_id": "etSOURCE", "group_name": "来源", "order": 1, "tag": [
        {"id": "etEXPO", "name": "展会"}]},
    {"group_id": "etGONE", "group_name": "已删除的组", "deleted": True, "tag": [
        {"id": "etGONE1", "name": "旧标签"}]},
]


def _tag_list(client, token, **body):
    return client.post("/wecom/cgi-bin/externalcontact/get_corp_tag_list",
                       params={"access_token": token}, json=body).json()


def test_the_corp_tag_list_holds_the_seeded_library_live_tags_only(client, clock):
    seeded = client.post("/sandbox/api/seed", json={"corp_tags": LIBRARY}).json()
    token = wecom_token(client, "contact-secret")

    answer = _tag_list(client, token)

    assert seeded["counts"]["corp_tags"] == 4
    assert answer["errcode"] == 0
    assert [(g["group_id"], g["group_name"], [t["id"] for t in g["tag"]])
            for g in answer["tag_group"]] == [
        ("etGRADE", "客户等级", ["etVIP", "etNORMAL"]), ("etSOURCE", "来源", ["etEXPO"])]
    assert answer["tag_group"][0]["tag"][0] == {
        "id": "etVIP", "name": "重要客户", "create_time": int(clock.now), "order": 2,
        "deleted": False}
    assert set(answer["tag_group"][0]) == {"group_id", "group_name", "create_time", "order",
                                           "deleted", "tag"}


def test_a_filtered_tag_list_shows_what_was_deleted(client):
    client.post("/sandbox/api/seed", json={"corp_tags": LIBRARY})
    token = wecom_token(client, "contact-secret")

    by_group = _tag_list(client, token, group_id=["etGRADE", "etGONE", "etNOPE"])
    by_tag = _tag_list(client, token, tag_id=["etOLD", "etEXPO"])
    both = _tag_list(client, token, tag_id=["etEXPO"], group_id=["etGONE"])
    bad = _tag_list(client, token, tag_id="etVIP")

    assert [(g["group_id"], g["deleted"], [(t["id"], t["deleted"]) for t in g["tag"]])
            for g in by_group["tag_group"]] == [
        ("etGRADE", False, [("etVIP", False), ("etNORMAL", False), ("etOLD", True)]),
        ("etGONE", True, [("etGONE1", False)])]
    assert [(g["group_id"], [t["id"] for t in g["tag"]]) for g in by_tag["tag_group"]] == [
        ("etGRADE", ["etOLD"]), ("etSOURCE", ["etEXPO"])]
    assert [g["group_id"] for g in both["tag_group"]] == ["etGONE"]  # group_id wins
    assert bad["errcode"] == 40058


def test_follows_name_their_tags_from_the_library(client):
    seed_company(client)
    client.post("/sandbox/api/seed", json={"corp_tags": LIBRARY, "external_contacts": [
        {"external_userid": "wmT1", "name": "客户", "follow_user": [
            {"userid": "rep_a", "createtime": 1_700_000_000, "tags": [
                {"tag_id": "etVIP", "type": 1},
                {"tag_id": "etOLD", "group_name": "客户等级", "tag_name": "旧等级", "type": 1},
                {"tag_name": "爱喝茶", "type": 2},
                {"tag_id": "etRULE", "group_name": "规则组", "tag_name": "高意向",
                 "type": 3}]}]}]})
    # the library renames a tag later
    client.post("/sandbox/api/seed", json={"corp_tags": [
        {"group_id": "etGRADE", "group_name": "客户等级", "tag": [
            {"id": "etVIP", "name": "核心客户", "order": 2}]}]})
    token = wecom_token(client, "contact-secret")

    one = client.get("/wecom/cgi-bin/externalcontact/get",
                     params={"access_token": token, "external_userid": "wmT1"}).json()
    batch = client.post("/wecom/cgi-bin/externalcontact/batch/get_by_user",
                        params={"access_token": token},
                        json={"userid_list": ["rep_a"]}).json()

    assert one["follow_user"][0]["tags"] == [
        {"group_name": "客户等级", "tag_name": "核心客户", "type": 1, "tag_id": "etVIP"},
        {"group_name": "", "tag_name": "爱喝茶", "type": 2},
        {"group_name": "规则组", "tag_name": "高意向", "type": 3, "tag_id": "etRULE"}]
    # batch/get_by_user names tags by id only, so a personal tag (no id) is not there
    assert batch["external_contact_list"][0]["follow_info"]["tag_id"] == ["etVIP", "etRULE"]
    assert "tags" not in batch["external_contact_list"][0]["follow_info"]


def test_a_bad_tag_library_seed_is_refused(client):
    response = client.post("/sandbox/api/seed", json={"corp_tags": [{"tag": [{"name": "x"}]}]})

    assert response.status_code == 400 and response.json()["code"] == "bad_seed"
