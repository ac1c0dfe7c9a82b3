import datetime as dt
import json

import pytest
from django.urls import reverse

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.core.models import AuditLog
from weiying.pipeline.models import Ticket
from weiying.pipeline.selectors.tickets import tickets_for
from weiying.pipeline.services import tickets as svc

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def world(company):
    a = f.customer("上海甲公司", company.rep_a)
    b = f.customer("北京丙公司", company.rep_b)
    ticket_a = svc.open_ticket(actor=user_of(company.rep_a), customer=a, title="甲的故障")
    ticket_b = svc.open_ticket(actor=user_of(company.rep_b), customer=b, title="丙的故障",
                               priority="urgent")
    return {"a": a, "b": b, "ticket_a": ticket_a, "ticket_b": ticket_b}


def _post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **EN)


# --- scope ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("persona", "sees"), [
    ("rep_a", {"甲的故障"}),
    ("rep_a2", set()),
    ("manager_a", {"甲的故障"}),
    ("director", {"甲的故障"}),
    ("rep_b", {"丙的故障"}),
    ("manager_b", {"丙的故障"}),
    ("operations", {"甲的故障", "丙的故障"}),
    ("admin", {"甲的故障", "丙的故障"}),
])
def test_ticket_scope_per_persona(company, world, persona, sees):
    user = user_of(getattr(company, persona))
    assert set(tickets_for(user).values_list("title", flat=True)) == sees


def test_rep_b_sees_none_of_rep_as_tickets_on_pages_and_api(company, world, login):
    client = login(company.rep_b)
    page = client.get(reverse("pipeline:ticket_list"))
    assert page.status_code == 200
    assert "丙的故障" in page.content.decode()
    assert "甲的故障" not in page.content.decode()
    listed = client.get("/api/tickets/").json()
    assert [t["title"] for t in listed["items"]] == ["丙的故障"]
    pk = world["ticket_a"].pk
    assert client.get(reverse("pipeline:ticket_detail", args=[pk])).status_code == 404
    assert client.get(f"/api/tickets/{pk}", **EN).status_code == 404
    response = _post(client, f"/api/tickets/{pk}/start")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.post(reverse("pipeline:ticket_action", args=[pk]),
                       {"action": "start"}).status_code == 404
    assert Ticket.objects.get(pk=pk).status == "open"


# --- pages ------------------------------------------------------------------------------------
def test_ticket_pages_render(company, world, login):
    client = login(company.rep_a)
    pk = world["ticket_a"].pk
    assert client.get(reverse("pipeline:ticket_list")).status_code == 200
    filtered = client.get(reverse("pipeline:ticket_list"), {
        "sla": "breached", "status": "open", "priority": "high", "owner": company.rep_a.pk,
        "q": "甲", "sort": "resolve_by",
    })
    assert filtered.status_code == 200
    detail = client.get(reverse("pipeline:ticket_detail", args=[pk]))
    assert detail.status_code == 200
    assert world["ticket_a"].number in detail.content.decode()
    assert client.get(reverse("pipeline:ticket_new")).status_code == 200
    assert client.get(reverse("pipeline:ticket_new"), {"q": "上海"}).status_code == 200
    new = client.get(reverse("pipeline:ticket_new"), {"customer": world["a"].pk})
    assert new.status_code == 200
    assert client.get(reverse("pipeline:ticket_new"),
                      {"customer": world["b"].pk}).status_code == 404
    assert client.get(reverse("pipeline:ticket_detail", args=[999999])).status_code == 404


def test_ticket_list_pages_with_a_keyset_cursor(company, world, login):
    for i in range(3):
        svc.open_ticket(actor=user_of(company.rep_a), customer=world["a"], title=f"第{i}个")
    client = login(company.rep_a)
    first = client.get("/api/tickets/", {"size": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = client.get("/api/tickets/", {"size": 3, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] is None
    titles = [t["title"] for t in first["items"] + second["items"]]
    assert sorted(titles) == sorted(["甲的故障", "第0个", "第1个", "第2个"])


def test_new_ticket_form_opens_a_ticket(company, world, login):
    client = login(company.rep_a)
    response = client.post(
        reverse("pipeline:ticket_new") + f"?customer={world['a'].pk}",
        {"customer": world["a"].pk, "title": "新问题", "priority": "high", "description": ""},
    )
    ticket = Ticket.objects.get(title="新问题")
    assert response.status_code == 302
    assert response["Location"] == reverse("pipeline:ticket_detail", args=[ticket.pk])
    assert ticket.priority == "high"


def test_action_page_moves_the_ticket_and_shows_refusals(company, world, login):
    client = login(company.rep_a)
    pk = world["ticket_a"].pk
    url = reverse("pipeline:ticket_action", args=[pk])
    response = client.post(url, {"action": "close"}, follow=True, **EN)
    assert "This ticket is open; resolve it before closing it." in response.content.decode()
    assert client.post(url, {"action": "start"}).status_code == 302
    assert client.post(url, {"action": "resolve", "resolution": "重启解决"}).status_code == 302
    assert Ticket.objects.get(pk=pk).status == "resolved"
    detail = client.get(reverse("pipeline:ticket_detail", args=[pk]), **EN).content.decode()
    assert "Work started" in detail and "重启解决" in detail


def test_finance_without_ticket_permission_gets_403_page(company, world, login):
    client = login(company.finance)
    url = reverse("pipeline:ticket_action", args=[world["ticket_a"].pk])
    assert client.post(url, {"action": "start"}).status_code == 403


# --- API --------------------------------------------------------------------------------------
def test_api_create_get_and_walk_a_ticket(company, world, login):
    client = login(company.rep_a)
    created = _post(client, "/api/tickets/", {"customer_id": world["a"].pk, "title": "屏幕坏了",
                                              "priority": "urgent"})
    assert created.status_code == 201
    body = created.json()
    assert body["number"].startswith("GD") and len(body["number"]) == 14
    assert body["sla"]["respond"] == "due"
    assert 3590 <= body["sla"]["respond_left_seconds"] <= 3600
    assert body["allowed_actions"] == ["start"]
    pk = body["id"]

    assert _post(client, f"/api/tickets/{pk}/start").json()["status"] == "in_progress"
    assert _post(client, f"/api/tickets/{pk}/wait").json()["status"] == "waiting"
    resolved = _post(client, f"/api/tickets/{pk}/resolve", {"resolution": "换屏"}).json()
    assert (resolved["status"], resolved["sla"]["respond"]) == ("resolved", "met")
    reopened = _post(client, f"/api/tickets/{pk}/reopen", {"reason": "又黑屏"}).json()
    assert reopened["status"] == "in_progress"
    _post(client, f"/api/tickets/{pk}/resolve", {"resolution": "换主板"})
    closed = _post(client, f"/api/tickets/{pk}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert client.get(f"/api/tickets/{pk}").json()["closed_at"] is not None


def test_api_refused_transition_is_409_with_code_and_message(company, world, login):
    client = login(company.rep_a)
    response = _post(client, f"/api/tickets/{world['ticket_a'].pk}/close")
    assert response.status_code == 409
    assert response.json() == {"code": "invalid_transition",
                               "message": "This ticket is open; resolve it before closing it."}


def test_api_validation_codes(company, world, login):
    client = login(company.rep_a)
    pk = world["ticket_a"].pk
    missing = _post(client, f"/api/tickets/{pk}/resolve", {})
    assert missing.status_code == 422 and missing.json()["code"] == "invalid"
    _post(client, f"/api/tickets/{pk}/start")
    blank = _post(client, f"/api/tickets/{pk}/resolve", {"resolution": "   "})
    assert blank.status_code == 400
    assert blank.json() == {"code": "invalid", "field": "resolution",
                            "message": "Say how the ticket was resolved before resolving it."}
    bad_priority = _post(client, f"/api/tickets/{pk}/priority", {"priority": "asap"})
    assert bad_priority.status_code == 400 and bad_priority.json()["field"] == "priority"
    unknown_filter = client.get("/api/tickets/", {"sla": "late"}, **EN)
    assert unknown_filter.status_code == 400 and unknown_filter.json()["field"] == "sla"
    other_customer = _post(client, "/api/tickets/", {"customer_id": world["b"].pk, "title": "x"})
    assert other_customer.status_code == 404


def test_api_reassign_and_priority(company, world, login):
    client = login(company.manager_a)
    pk = world["ticket_a"].pk
    moved = _post(client, f"/api/tickets/{pk}/reassign", {"owner_id": company.rep_a2.pk})
    assert moved.status_code == 200 and moved.json()["owner_id"] == company.rep_a2.pk
    outside = _post(client, f"/api/tickets/{pk}/reassign", {"owner_id": company.rep_b.pk})
    assert outside.status_code == 400 and outside.json()["field"] == "owner_id"
    changed = _post(client, f"/api/tickets/{pk}/priority", {"priority": "urgent"}).json()
    opened = dt.datetime.fromisoformat(changed["opened_at"])
    assert dt.datetime.fromisoformat(changed["resolve_by"]) - opened == dt.timedelta(hours=8)
    assert AuditLog.objects.filter(action="ticket.priority").count() == 1


def test_api_list_filters_breached_tickets(company, world, login):
    old = f.ticket_row(world["a"], title="早就超时", opened_at=f.NOW - dt.timedelta(days=30),
                       respond_by=f.NOW - dt.timedelta(days=29),
                       resolve_by=f.NOW - dt.timedelta(days=27))
    client = login(company.rep_a)
    listed = client.get("/api/tickets/", {"sla": "breached"}).json()
    assert [t["id"] for t in listed["items"]] == [old.pk]
    assert listed["items"][0]["sla"]["resolve"] == "breached"


def test_api_needs_authentication(world, client):
    response = client.get("/api/tickets/")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def _queries(client, url, params=None):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


def test_ticket_list_query_count_does_not_grow_with_rows(company, world, login):
    client = login(company.manager_a)
    url = reverse("pipeline:ticket_list")
    before = _queries(client, url)
    api_before = _queries(client, "/api/tickets/")
    for i in range(6):
        buyer = f.customer(f"客户{i}", company.rep_a2 if i % 2 else company.rep_a)
        svc.open_ticket(actor=user_of(company.manager_a), customer=buyer, title=f"故障{i}")
    assert _queries(client, url) == before
    assert _queries(client, "/api/tickets/") == api_before
