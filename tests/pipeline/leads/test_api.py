import pytest

from weiying.pipeline.models import Lead

pytestmark = pytest.mark.django_db

BASE = "/api/leads/"


def test_create_is_idempotent_by_external_id(company, login):
    client = login(company.manager_a)
    body = {"name": "张三", "phone": "13812345678", "external_id": "site-42",
            "owner_id": company.rep_a.pk}
    first = client.post(BASE, body, content_type="application/json")
    assert first.status_code == 201
    again = client.post(BASE, {**body, "name": "改名"}, content_type="application/json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["name"] == "张三"
    assert first.json()["phone"] == "138****5678" and first.json()["source"] == "api"
    assert Lead.objects.count() == 1


def test_create_validation_error_has_code_and_field(company, login):
    res = login(company.rep_a).post(BASE, {"name": "张三", "phone": "999"},
                                    content_type="application/json")
    assert res.status_code == 400
    assert res.json()["code"] == "invalid" and res.json()["field"] == "phone"


def test_list_get_and_scope(company, login, make_lead):
    mine = make_lead(owner=company.rep_a)
    theirs = make_lead(owner=company.rep_b)
    client = login(company.rep_a)
    listed = client.get(BASE, {"size": 10}).json()
    assert [item["id"] for item in listed["items"]] == [mine.pk]
    assert listed["next_cursor"] is None
    assert client.get(f"{BASE}{mine.pk}").status_code == 200
    missing = client.get(f"{BASE}{theirs.pk}")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_assign_disqualify_convert(company, login, make_lead):
    lead = make_lead(owner=company.rep_a, company_name="星辰科技")
    manager = login(company.manager_a)
    assert login(company.rep_a).post(f"{BASE}{lead.pk}/assign", {"owner_id": company.rep_a2.pk},
                                     content_type="application/json").status_code == 403
    res = manager.post(f"{BASE}{lead.pk}/assign", {"owner_id": company.rep_a2.pk},
                       content_type="application/json")
    assert res.status_code == 200 and res.json()["owner_id"] == company.rep_a2.pk
    res = manager.post(f"{BASE}{lead.pk}/convert", {"amount": "5000"},
                       content_type="application/json")
    assert res.status_code == 200
    assert res.json()["lead"]["status"] == "converted" and res.json()["opportunity_id"]
    res = manager.post(f"{BASE}{lead.pk}/disqualify", {"reason": "spam"},
                       content_type="application/json")
    assert res.status_code == 409 and res.json()["code"] == "lead_converted"


def test_import_endpoint_returns_the_report(company, login):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = "姓名,手机\n张三,13812345678\n李四,123\n".encode()
    res = login(company.manager_a).post(
        f"{BASE}import?valid_only=true",
        {"file": SimpleUploadedFile("leads.csv", data, content_type="text/csv")},
    )
    assert res.status_code == 200
    body = res.json()
    assert (body["rows"], body["imported"], body["rejected"]) == (2, 1, 1)
    assert body["errors"] == [{"row": 3, "column": "手机",
                               "message": "Not a valid mobile or landline number."}]
    assert login(company.rep_a).post(
        f"{BASE}import", {"file": SimpleUploadedFile("l.csv", data)}
    ).status_code == 403
