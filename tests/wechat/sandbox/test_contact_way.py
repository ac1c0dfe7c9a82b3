from __future__ import annotations

from .conftest import seed_company, wecom_token

ADD = "/wecom/cgi-bin/externalcontact/add_contact_way"


def test_add_contact_way_returns_a_config_id_and_a_qr_image(client):
    seed_company(client)
    token = wecom_token(client, "contact-secret")

    made = client.post(ADD, params={"access_token": token}, json={
        "type": 2, "scene": 2, "state": "x" * 30, "user": ["rep_a", "rep_b"],
        "skip_verify": True, "remark": "春季展会"}).json()
    got = client.post("/wecom/cgi-bin/externalcontact/get_contact_way",
                      params={"access_token": token},
                      json={"config_id": made["config_id"]}).json()
    image = client.get(made["qr_code"].removeprefix("http://sandbox"))

    assert made["errcode"] == 0
    assert made["qr_code"] == f"http://sandbox/sandbox/qr/{made['config_id']}"
    assert got["contact_way"]["state"] == "x" * 30
    assert got["contact_way"]["user"] == ["rep_a", "rep_b"]
    assert image.headers["content-type"] == "image/svg+xml"
    assert image.content.startswith(b"<svg")


def test_a_state_longer_than_30_characters_is_refused(client):
    seed_company(client)
    token = wecom_token(client, "contact-secret")

    answer = client.post(ADD, params={"access_token": token}, json={
        "type": 1, "scene": 2, "state": "x" * 31, "user": ["rep_a"]}).json()

    assert answer["errcode"] == 40058
    assert "30" in answer["errmsg"]
    assert client.get("/sandbox/api/state").json()["counts"]["contact_ways"] == 0


def test_single_codes_take_one_member_and_members_must_exist(client):
    seed_company(client)
    token = wecom_token(client, "contact-secret")

    two = client.post(ADD, params={"access_token": token}, json={
        "type": 1, "scene": 2, "user": ["rep_a", "rep_b"]}).json()
    ghost = client.post(ADD, params={"access_token": token}, json={
        "type": 2, "scene": 2, "user": ["ghost"]}).json()
    mini_program = client.post(ADD, params={"access_token": token}, json={
        "type": 1, "scene": 1, "user": ["rep_a"]}).json()

    assert two["errcode"] == 40058
    assert ghost["errcode"] == 60111
    assert mini_program["errcode"] == 0 and "qr_code" not in mini_program


def test_del_contact_way(client):
    seed_company(client)
    token = wecom_token(client, "contact-secret")
    made = client.post(ADD, params={"access_token": token}, json={
        "type": 1, "scene": 2, "user": ["rep_a"]}).json()

    deleted = client.post("/wecom/cgi-bin/externalcontact/del_contact_way",
                          params={"access_token": token},
                          json={"config_id": made["config_id"]}).json()
    again = client.post("/wecom/cgi-bin/externalcontact/get_contact_way",
                        params={"access_token": token},
                        json={"config_id": made["config_id"]}).json()

    assert deleted["errcode"] == 0
    assert again["errcode"] == 40058
    assert client.get(made["qr_code"].removeprefix("http://sandbox")).status_code == 404
