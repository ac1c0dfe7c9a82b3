from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import user_of
from tests.reports.test_dashboards import figures  # noqa: F401 - the fixture
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.org.models import Department, Employee
from weiying.reports import schedules
from weiying.reports.models import ReportSchedule
from weiying.wechat.models import OutboxMessage

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC


def at(month: int, day: int, hour: int, minute: int = 0, tz: Any = SHANGHAI) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=tz)


def make(**fields: Any) -> ReportSchedule:
    fields.setdefault("name", "日报")
    fields.setdefault("hour", 9)
    fields.setdefault("created_at", at(3, 1, 8))
    return ReportSchedule.objects.create(**fields)


def test_a_daily_schedule_falls_due_at_its_hour_in_shanghai(company: SimpleNamespace) -> None:
    s = make(recipient=company.manager_a)
    assert schedules.due_slot(s, at(3, 1, 8, 59)) is None  # yesterday's 9:00 predates it
    assert schedules.due_slot(s, at(3, 1, 9)) == at(3, 1, 9)
    # 01:00 UTC is 09:00 in Shanghai; 00:59 UTC is still before it
    assert schedules.due_slot(s, at(3, 2, 0, 59, UTC)) == at(3, 1, 9)
    assert schedules.due_slot(s, at(3, 2, 1, 0, UTC)) == at(3, 2, 9)
    s.last_slot = at(3, 2, 9)
    assert schedules.due_slot(s, at(3, 2, 23)) is None
    assert schedules.due_slot(s, at(3, 3, 9, 30)) == at(3, 3, 9)
    s.is_active = False
    assert schedules.due_slot(s, at(3, 3, 9, 30)) is None


def test_a_weekly_schedule_falls_due_on_its_weekday(company: SimpleNamespace) -> None:
    # 2 March 2026 is a Monday
    s = make(recipient=company.manager_a, frequency="weekly", weekday=0, hour=8)
    assert schedules.due_slot(s, at(3, 1, 23)) is None
    assert schedules.due_slot(s, at(3, 2, 7, 59)) is None
    assert schedules.due_slot(s, at(3, 2, 8)) == at(3, 2, 8)
    assert schedules.latest_slot(s, at(3, 8, 23)) == at(3, 2, 8)  # the Sunday after
    assert schedules.latest_slot(s, at(3, 9, 8, 1)) == at(3, 9, 8)
    s.last_slot = at(3, 2, 8)
    assert schedules.due_slot(s, at(3, 6, 12)) is None
    assert schedules.report_period(s, at(3, 9, 8)).start == dt.date(2026, 3, 2)
    assert schedules.report_period(s, at(3, 9, 8)).end == dt.date(2026, 3, 8)


def test_the_card_carries_the_recipients_own_figures(figures: SimpleNamespace) -> None:  # noqa: F811
    c = figures
    s = make(name="团队日报", recipient=c.manager_a)
    content = schedules.card(s, c.manager_a, at(3, 21, 9))
    card = content["textcard"]
    assert card["title"] == "团队日报 · 2026-03"
    assert card["url"].endswith("/reports/dashboard/manager/?period=2026-03")
    assert card["description"].count('<div class="gray">') == 4
    assert "¥17,000.00" in card["description"]  # team A, not the company's ¥24,000
    assert "¥7,000.00" not in card["description"]


def test_heads_of_a_level_each_get_their_own_scope(figures: SimpleNamespace) -> None:  # noqa: F811
    c = figures
    Department.objects.filter(pk=c.team_a.pk).update(manager=c.manager_a)
    Department.objects.filter(pk=c.team_b.pk).update(manager=c.manager_b)
    Employee.objects.filter(pk__in=[c.manager_a.pk, c.manager_b.pk, c.rep_a.pk]).update(
        level="M1", wecom_userid="wx")
    s = make(name="主管日报", recipient_level="M1")
    assert [e.pk for e in schedules.recipients(s)] == [c.manager_a.pk, c.manager_b.pk]
    assert schedules.send_due(at(3, 21, 9, 1)) == 2
    cards = {m.employee_id: m.content["textcard"]["description"]
             for m in OutboxMessage.objects.filter(kind="report_schedule")}
    assert "¥17,000.00" in cards[c.manager_a.pk]
    assert "¥7,000.00" in cards[c.manager_b.pk] and "¥17,000.00" not in cards[c.manager_b.pk]


def test_each_slot_is_sent_once(figures: SimpleNamespace) -> None:  # noqa: F811
    c = figures
    s = make(recipient=c.manager_a)
    assert schedules.send_due(at(3, 21, 9, 1)) == 1
    assert schedules.send_due(at(3, 21, 10, 1)) == 0
    s.refresh_from_db()
    assert s.last_slot == at(3, 21, 9)
    ReportSchedule.objects.filter(pk=s.pk).update(last_slot=None)  # a lost update, replayed
    assert schedules.send_due(at(3, 21, 9, 30)) == 0
    assert OutboxMessage.objects.filter(kind="report_schedule").count() == 1
    assert schedules.send_due(at(3, 22, 9, 1)) == 1
    assert OutboxMessage.objects.filter(kind="report_schedule").count() == 2


def test_a_recipient_without_a_login_gets_no_card(company: SimpleNamespace) -> None:
    c = company
    Employee.objects.filter(pk=c.rep_b.pk).update(user=None)
    make(recipient=c.rep_b)
    assert schedules.send_due(at(3, 21, 9, 1)) == 0


def test_saving_checks_the_input_and_the_scope(company: SimpleNamespace) -> None:
    c = company
    manager = user_of(c.manager_a)
    good = {"name": "周报", "report": "manager", "frequency": "weekly", "weekday": "0",
            "hour": "8", "recipient": str(c.rep_a.pk)}
    s = schedules.save_schedule(actor=manager, data=good)
    assert (s.weekday, s.hour, s.recipient_id, s.created_by_id) == (0, 8, c.rep_a.pk,
                                                                    manager.pk)
    for bad, field in [({"hour": "24"}, "hour"), ({"weekday": ""}, "weekday"),
                       ({"report": "nope"}, "report"), ({"name": " "}, "name"),
                       ({"frequency": "monthly"}, "frequency")]:
        with pytest.raises(ValidationFailed) as caught:
            schedules.save_schedule(actor=manager, data={**good, **bad})
        assert caught.value.field == field
    with pytest.raises(NotFound):
        schedules.save_schedule(actor=manager, data={**good, "recipient": str(c.rep_b.pk)})
    with pytest.raises(PermissionDenied):
        schedules.save_schedule(actor=manager, data={**good, "recipient": "",
                                                     "recipient_level": "M1"})
    with pytest.raises(PermissionDenied):
        schedules.save_schedule(actor=user_of(c.rep_a), data=good)
    assert ReportSchedule.objects.count() == 1


def test_the_schedule_page_is_scoped(company: SimpleNamespace, login: Any) -> None:
    c = company
    mine = schedules.save_schedule(actor=user_of(c.manager_a), data={
        "name": "A组日报", "report": "dashboard", "frequency": "daily", "hour": "9",
        "recipient": str(c.manager_a.pk)})
    theirs = schedules.save_schedule(actor=user_of(c.manager_b), data={
        "name": "B组日报", "report": "dashboard", "frequency": "daily", "hour": "9",
        "recipient": str(c.rep_b.pk)})
    assert login(c.rep_a).get("/reports/schedules/").status_code == 403
    page = login(c.manager_a).get("/reports/schedules/").content.decode()
    assert "A组日报" in page and "B组日报" not in page
    admin_page = login(c.admin).get("/reports/schedules/").content.decode()
    assert "A组日报" in admin_page and "B组日报" in admin_page
    client = login(c.manager_a)
    assert client.post(f"/reports/schedules/{theirs.pk}/pause/").status_code == 404
    assert client.post(f"/reports/schedules/{mine.pk}/pause/").status_code == 302
    mine.refresh_from_db()
    assert mine.is_active is False
    response = client.post("/reports/schedules/", {
        "name": "x", "report": "dashboard", "frequency": "daily", "hour": "25",
        "recipient": str(c.rep_a.pk)})
    assert response.status_code == 400
    assert ReportSchedule.objects.count() == 2


def test_a_report_page_schedule_links_the_page(figures: SimpleNamespace) -> None:  # noqa: F811
    c = figures
    s = make(name="漏斗周报", recipient=c.manager_a, report="funnel", frequency="weekly",
             weekday=0)
    card = schedules.card(s, c.manager_a, at(3, 23, 9))["textcard"]
    assert card["url"].endswith("/reports/funnel/")
    assert card["title"].startswith("漏斗周报 · 2026-03-16")


def test_the_hourly_job_sends_what_is_due(figures: SimpleNamespace) -> None:  # noqa: F811
    from unittest import mock

    from weiying.reports.tasks_schedules import send_scheduled_reports

    make(recipient=figures.manager_a)
    with mock.patch("django.utils.timezone.now", return_value=at(3, 21, 9, 1)):
        send_scheduled_reports.call_local()
    assert OutboxMessage.objects.filter(kind="report_schedule").count() == 1
