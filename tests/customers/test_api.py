import pytest

from tests.conftest import user_of
from tests.customers.conftest import make_customer
from weiying.api.tokens import issue_token
from weiying.core.models import AuditLog
from weiying.customers.models import Customer
from weiying.org.models import Role

pytestmark = pytest.mark.django_db

BASE = "/api/customers"


def test_list_is_scoped_masked_and_paged(company, login):
    for i in range(3):
        make_customer(company.rep_a, name=f"甲{i}", phone=f"1380000000{i}")
    make_customer(company.rep_b, name="乙")
    client = login(company.rep_a)

    first = client.get(BASE, {"size": 2}).json()
    second = client.get(BASE, {"size": 2, "cursor": first["next_cursor"]}).json()

    names = [c["name"] for c in first["items"] + second["items"]]
    assert sorted(names) == ["甲0", "甲1", "甲2"]
    assert second["next_cursor"] is None
    assert first["items"][0]["phone"].startswith("138****")


def test_list_refuses_an_unknown_sort_and_a_damaged_cursor(company, login):
    client = login(company.rep_a)

    bad_sort = client.get(BASE, {"sort": "phone"})
    bad_cursor = client.get(BASE, {"cursor": "!!!"})

    assert bad_sort.status_code == 400
    assert bad_sort.json()["code"] == "invalid"
    assert bad_sort.json()["field"] == "sort"
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["field"] == "cursor"


def test_create_defaults_to_the_caller_as_owner(company, login):
    response = login(company.rep_a).post(BASE, {
        "name": "接口客户", "phone": "13912345678", "tags": ["API"],
        "identities": [{"kind": "unionid", "value": "u-api"}],
    }, content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    assert body["owner_id"] == company.rep_a.pk
    assert body["phone"] == "139****5678"
    assert body["tags"] == ["API"]
    assert AuditLog.objects.get(action="customer.create").channel == "api"


def test_create_to_pool_goes_to_the_callers_branch(company, login):
    response = login(company.rep_a).post(BASE, {"name": "池客户", "to_pool": True},
                                         content_type="application/json")

    assert response.status_code == 201
    assert response.json()["in_pool"] is True
    assert response.json()["pool_department_id"] == company.east.pk


def test_create_duplicate_is_409_with_its_code(company, login):
    make_customer(company.rep_a, phone="13912345678")

    response = login(company.rep_a).post(BASE, {"name": "重复", "phone": "13912345678"},
                                         content_type="application/json")

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_customer"
    assert response.json()["field"] == "phone"


def test_create_with_bad_fields_names_them(company, login):
    client = login(company.rep_a)

    empty = client.post(BASE, {"name": ""}, content_type="application/json")
    bad_level = client.post(BASE, {"name": "某公司", "level": "Z"},
                            content_type="application/json")
    foreign_owner = client.post(BASE, {"name": "某公司", "owner_id": company.rep_b.pk},
                                content_type="application/json")

    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "name"
    assert bad_level.status_code == 400
    assert bad_level.json()["field"] == "level"
    assert foreign_owner.status_code == 400
    assert foreign_owner.json()["field"] == "owner_id"


def test_get_and_patch(company, login):
    customer = make_customer(company.rep_a, city="上海")
    client = login(company.rep_a)

    got = client.get(f"{BASE}/{customer.pk}")
    patched = client.patch(f"{BASE}/{customer.pk}", {"city": "杭州", "level": "A"},
                           content_type="application/json")

    assert got.status_code == 200
    assert got.json()["city"] == "上海"
    assert patched.status_code == 200
    assert (patched.json()["city"], patched.json()["level"]) == ("杭州", "A")


def test_outside_scope_is_404(company, login):
    customer = make_customer(company.rep_b)
    client = login(company.rep_a)

    for method, path in [("get", ""), ("patch", ""), ("post", "/claim"),
                         ("post", "/reveal-phone"), ("get", "/contacts")]:
        response = getattr(client, method)(f"{BASE}/{customer.pk}{path}", {},
                                           content_type="application/json")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


def test_contacts_consent_tags_and_identities(company, login):
    customer = make_customer(company.rep_a)
    client = login(company.rep_a)
    url = f"{BASE}/{customer.pk}"

    contact = client.post(f"{url}/contacts", {"name": "张三", "phone": "13700001111"},
                          content_type="application/json")
    consent = client.post(f"{url}/consents", {"purpose": "calls", "granted": True,
                                              "method": "verbal"},
                          content_type="application/json")
    bad_consent = client.post(f"{url}/consents", {"purpose": "spam", "granted": True,
                                                  "method": "verbal"},
                              content_type="application/json")
    tags = client.put(f"{url}/tags", {"names": ["甲", "乙"]}, content_type="application/json")
    ident = client.post(f"{url}/identities", {"kind": "openid", "value": "o-1"},
                        content_type="application/json")

    assert contact.status_code == 201
    assert contact.json()["phone"] == "137****1111"
    assert client.get(f"{url}/contacts").json()[0]["is_primary"] is True
    assert consent.status_code == 201
    assert client.get(f"{url}/consents").json()[0]["purpose"] == "calls"
    assert bad_consent.status_code == 400
    assert bad_consent.json()["field"] == "purpose"
    assert sorted(tags.json()) == ["乙", "甲"]
    assert ident.status_code == 201


def test_reveal_phone(company, login):
    customer = make_customer(company.rep_a, phone="13800138000")

    refused = login(company.rep_a).post(f"{BASE}/{customer.pk}/reveal-phone")
    revealed = login(company.director).post(f"{BASE}/{customer.pk}/reveal-phone")

    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert revealed.json() == {"phone": "13800138000"}
    assert AuditLog.objects.filter(action="customer.unmask").count() == 1


def test_duplicates_check_hides_what_the_caller_may_not_see(company, login):
    mine = make_customer(company.rep_a, name="星辰科技", phone="13800138000")
    make_customer(company.rep_b, name="星辰科技有限公司", allow_duplicate=True)

    body = login(company.rep_a).get(f"{BASE}/duplicates", {"name": "星辰科技"}).json()

    assert [m["id"] for m in body["matches"]] == [mine.pk]
    assert body["hidden"] == 1


def test_merge(company, login):
    survivor = make_customer(company.rep_a)
    duplicate = make_customer(company.rep_a2)

    refused = login(company.rep_a).post(f"{BASE}/{survivor.pk}/merge",
                                        {"duplicate_id": duplicate.pk},
                                        content_type="application/json")
    merged = login(company.manager_a).post(f"{BASE}/{survivor.pk}/merge",
                                           {"duplicate_id": duplicate.pk},
                                           content_type="application/json")

    assert refused.status_code in (403, 404)
    assert merged.status_code == 200
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == survivor.pk
    assert login(company.manager_a).get(f"{BASE}/{duplicate.pk}").json()["merged_into_id"] \
        == survivor.pk


def test_pool_claim_release_and_assign(company, login, settings):
    settings.WEIYING = {**settings.WEIYING, "POOL_DAILY_CLAIM_LIMIT": 1}
    a = make_customer(None, name="池一", pool_department=company.east)
    b = make_customer(None, name="池二", pool_department=company.east)
    rep = login(company.rep_a)

    pool = rep.get(f"{BASE}/pool").json()
    claimed = rep.post(f"{BASE}/{a.pk}/claim")
    over = rep.post(f"{BASE}/{b.pk}/claim")
    no_reason = rep.post(f"{BASE}/{a.pk}/release", {"reason": ""},
                         content_type="application/json")
    released = rep.post(f"{BASE}/{a.pk}/release", {"reason": "暂不需要"},
                        content_type="application/json")
    assigned = login(company.manager_a).post(f"{BASE}/{b.pk}/assign",
                                             {"owner_id": company.rep_a2.pk},
                                             content_type="application/json")
    outside = login(company.manager_a).post(f"{BASE}/{a.pk}/assign",
                                            {"owner_id": company.rep_b.pk},
                                            content_type="application/json")

    assert {c["name"] for c in pool["items"]} == {"池一", "池二"}
    assert claimed.status_code == 200
    assert claimed.json()["owner_id"] == company.rep_a.pk
    assert over.status_code == 409
    assert over.json()["code"] == "claim_daily_limit"
    assert no_reason.status_code == 422
    assert released.status_code == 200
    assert released.json()["in_pool"] is True
    assert assigned.json()["owner_id"] == company.rep_a2.pk
    assert outside.status_code == 400
    assert outside.json()["field"] == "owner_id"


def test_reclaim_bar_over_the_api(company, login):
    customer = make_customer(company.rep_a)
    rep = login(company.rep_a)
    rep.post(f"{BASE}/{customer.pk}/release", {"reason": "x"}, content_type="application/json")

    response = rep.post(f"{BASE}/{customer.pk}/claim")

    assert response.status_code == 409
    assert response.json()["code"] == "claim_reclaim_barred"


def test_api_token_acts_with_the_tokens_role(company, client):
    _token, raw = issue_token(actor=user_of(company.admin), name="ERP",
                              user=user_of(company.admin), role=Role.objects.get(code="finance"))
    make_customer(company.rep_b, name="任意")

    listed = client.get(BASE, HTTP_AUTHORIZATION=f"Bearer {raw}")
    created = client.post(BASE, {"name": "不可"}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert [c["name"] for c in listed.json()["items"]] == ["任意"]
    assert created.status_code == 403
    assert not Customer.objects.filter(name="不可").exists()
