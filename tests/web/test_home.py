import pytest

pytestmark = pytest.mark.django_db


def test_login_page_is_chinese_by_default(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert "登录" in response.content.decode()


def test_login_page_in_english_when_asked(client):
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Sign in" in response.content.decode()


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_overview_counts_only_what_is_in_scope(company, login):
    from django.utils import timezone

    from weiying.pipeline.models import Lead

    now = timezone.now()
    for owner in [company.rep_a, company.rep_a, company.rep_b]:
        # A row keeps its owner's department (the scopes read it; services set it).
        Lead.objects.create(name="x", phone="13900000000", owner=owner,
                            department=owner.department, status="assigned",
                            last_activity_at=now, created_at=now)
    assert login(company.rep_a).get("/").context["lead_stats"]["new"] == 2
    assert login(company.manager_b).get("/").context["lead_stats"]["new"] == 1
    assert login(company.finance).get("/").context["lead_stats"]["new"] == 3


def test_phone_user_agent_goes_to_my_day(company, login):
    response = login(company.rep_a).get("/", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) wxwork/4.1")
    assert response.status_code == 302
    assert response["Location"] == "/m/"


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
