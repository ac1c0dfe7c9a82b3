import pytest
from django.test import Client

from tests.conftest import user_of
from weiying.api.models import ApiToken
from weiying.api.tokens import issue_token
from weiying.core.models import AuditLog
from weiying.org.models import Role

pytestmark = pytest.mark.django_db


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_unauthenticated_api_call_gets_a_json_error(company):
    response = Client().get("/api/org/me")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_token_is_stored_hashed_and_acts_with_its_role(company):
    admin = user_of(company.admin)
    token, raw = issue_token(actor=admin, name="ERP", user=user_of(company.rep_a),
                             role=Role.objects.get(code="rep"))
    assert raw not in {token.token_hash, token.prefix}
    assert ApiToken.objects.filter(token_hash__contains=raw).count() == 0

    body = Client().get("/api/org/me", **bearer(raw)).json()
    assert body["username"] == "e030"
    assert body["data_scope"] == "self"
    assert "lead.assign" not in body["permissions"]


def test_token_role_narrows_a_superuser(company, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x" * 12)
    _token, raw = issue_token(actor=user_of(company.admin), name="BI", user=root,
                              role=Role.objects.get(code="rep"))
    body = Client().get("/api/org/me", **bearer(raw)).json()
    assert body["data_scope"] == "none"  # a rep-scoped token for a user with no employee


def test_revoked_token_is_refused(company, login):
    client = login(company.admin)
    created = client.post("/api/org/tokens", {"name": "HR", "role": "rep",
                                                "username": "e030"},
                          content_type="application/json")
    assert created.status_code == 201
    raw = created.json()["token"]
    assert Client().get("/api/org/me", **bearer(raw)).status_code == 200

    deleted = client.delete(f"/api/org/tokens/{created.json()['id']}")
    assert deleted.status_code == 204
    assert Client().get("/api/org/me", **bearer(raw)).status_code == 401
    assert AuditLog.objects.filter(action="api_token.revoke").count() == 1


def test_rep_cannot_issue_tokens(company, login):
    response = login(company.rep_a).post("/api/org/tokens", {"name": "x", "role": "rep"},
                                         content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_validation_errors_name_the_field(company, login):
    response = login(company.admin).post("/api/org/employees", {"number": "", "name": "x"},
                                         content_type="application/json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert {e["field"] for e in body["errors"]} >= {"number", "department_id"}
