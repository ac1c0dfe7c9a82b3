import datetime as dt

import pytest
from django.utils import timezone, translation

from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.events import DomainEvent
from weiying.core.models import AuditLog
from weiying.org import history
from weiying.org import services as org
from weiying.org.models import Assignment, Employee

pytestmark = pytest.mark.django_db


def assert_history_holds(employee):
    """Stretches cover every day from history.BEGINNING, without gap or overlap, exactly one
    open, the open one holding what the roster says today."""
    employee = Employee.objects.get(pk=employee.pk)
    rows = list(Assignment.objects.filter(employee=employee).order_by("starts_on"))
    assert rows, f"{employee.number} has no history"
    assert rows[0].starts_on == history.BEGINNING
    for before, after in zip(rows, rows[1:], strict=False):
        assert before.ends_on == after.starts_on, (before, after)
        assert before.starts_on < before.ends_on
    assert [r.ends_on for r in rows].count(None) == 1
    assert rows[-1].ends_on is None
    last = rows[-1]
    assert (last.department_id, last.position, last.level) == (
        employee.department_id, employee.position, employee.level)
    return rows


def stretches(employee):
    return [(a.department_id, a.position, a.level, a.starts_on, a.ends_on, a.reason)
            for a in Assignment.objects.filter(employee=employee).order_by("starts_on")]


def test_a_promotion_splits_the_history_on_its_day(company):
    rep = company.rep_a
    on = dt.date(2026, 3, 1)

    org.promote_employee(actor=company.admin.user, employee=rep, position="资深销售",
                         level="P5", on=on)

    team = company.team_a.pk
    assert stretches(rep) == [
        (team, "", "", history.BEGINNING, on, "join"),
        (team, "资深销售", "P5", on, None, "promotion"),
    ]
    assert_history_holds(rep)
    audit = AuditLog.objects.filter(action="employee.promote").get()
    assert audit.before == {"position": "", "level": ""}
    assert audit.after == {"position": "资深销售", "level": "P5", "on": "2026-03-01"}
    event = DomainEvent.objects.filter(name="employee.promoted").get()
    assert event.data["to_level"] == "P5" and event.data["on"] == "2026-03-01"


def test_a_promotion_that_changes_nothing_is_refused(company):
    org.promote_employee(actor=company.admin.user, employee=company.rep_a, position="销售",
                         level="P4", on=dt.date(2026, 3, 1))
    audits = AuditLog.objects.count()

    with translation.override("en"), pytest.raises(Conflict) as caught:
        org.promote_employee(actor=company.admin.user, employee=company.rep_a,
                             position="销售", level="P4", on=dt.date(2026, 4, 1))

    assert caught.value.code == "no_change"
    assert "李销售 already holds the position 销售 at level P4" in str(caught.value.message)
    assert AuditLog.objects.count() == audits
    assert Assignment.objects.filter(employee=company.rep_a).count() == 2


def test_a_promotion_dated_before_the_last_change_is_refused(company):
    org.transfer_employee(actor=company.admin.user, employee=company.rep_a,
                          department=company.team_b, on=dt.date(2026, 5, 1))
    before = stretches(company.rep_a)

    with translation.override("en"), pytest.raises(ValidationFailed) as caught:
        org.promote_employee(actor=company.admin.user, employee=company.rep_a,
                             position="组长", level="M1", on=dt.date(2026, 4, 30))

    assert "last change took effect on 2026-05-01" in str(caught.value.message)
    assert stretches(company.rep_a) == before
    assert Employee.objects.get(pk=company.rep_a.pk).position == ""


def test_a_rep_may_not_promote(company):
    from weiying.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        org.promote_employee(actor=company.rep_a.user, employee=company.rep_a,
                             position="总监", level="M9", on=dt.date(2026, 1, 1))
    assert Employee.objects.get(pk=company.rep_a.pk).position == ""


def test_a_profile_change_of_position_is_recorded_from_today(company):
    rep = company.rep_a
    values = {f: getattr(rep, f) for f in org.EMPLOYEE_FIELDS}
    values.update(position="组长", level="M1")

    org.update_employee(actor=company.admin.user, employee=rep, **values)

    today = timezone.localdate()
    rows = assert_history_holds(rep)
    assert [(r.position, r.level, r.starts_on, r.reason) for r in rows] == [
        ("", "", history.BEGINNING, "join"), ("组长", "M1", today, "update"),
    ]


def test_a_profile_change_without_a_new_position_leaves_the_history_alone(company):
    rep = company.rep_a
    values = {f: getattr(rep, f) for f in org.EMPLOYEE_FIELDS}
    values.update(city="苏州")

    org.update_employee(actor=company.admin.user, employee=rep, **values)

    assert len(assert_history_holds(rep)) == 1


def test_transfers_promotions_and_same_day_corrections_keep_the_history_whole(company):
    rep, actor = company.rep_a, company.admin.user
    org.transfer_employee(actor=actor, employee=rep, department=company.team_b,
                          on=dt.date(2025, 1, 1))
    org.promote_employee(actor=actor, employee=rep, position="资深销售", level="P5",
                         on=dt.date(2025, 6, 1))
    # a same-day correction: the level was wrong
    org.promote_employee(actor=actor, employee=rep, position="资深销售", level="P6",
                         on=dt.date(2025, 6, 1))
    org.transfer_employee(actor=actor, employee=rep, department=company.team_a,
                          on=dt.date(2025, 9, 1))

    rows = assert_history_holds(rep)
    a, b = company.team_a.pk, company.team_b.pk
    assert [(r.department_id, r.level, r.starts_on) for r in rows] == [
        (a, "", history.BEGINNING), (b, "", dt.date(2025, 1, 1)),
        (b, "P6", dt.date(2025, 6, 1)), (a, "P6", dt.date(2025, 9, 1)),
    ]
    assert history.department_on(rep.pk, dt.date(2025, 5, 31)) == b
    assert history.department_on(rep.pk, dt.date(2025, 9, 1)) == a
    assert history.department_on(rep.pk, dt.date(2020, 1, 1)) == a


def test_everyone_keeps_a_whole_history_after_a_roster_import(company):
    from weiying.org.roster_import import apply_records, records_from_api

    report = apply_records(records_from_api([
        {"number": "E030", "department": "华北分公司/北京一组", "effective_date": "2026-02-01",
         "level": "P5"},
        {"number": "N100", "name": "新人", "department": "总部/华东分公司/上海一组",
         "leader": "E020"},
        {"number": "E031", "status": "离职", "leave_date": "2026-02-15", "successor": "E030"},
    ]), actor=company.admin.user)

    assert report.ok, report.errors
    assert (report.created, report.transferred, report.promoted, report.left) == (1, 1, 1, 1)
    for employee in Employee.objects.all():
        assert_history_holds(employee)
    assert [(r.department_id, r.level) for r in assert_history_holds(company.rep_a)] == [
        (company.team_a.pk, ""), (company.team_b.pk, "P5")]


def test_the_wecom_directory_sync_records_a_move_and_a_new_position_in_the_history(company):
    from weiying.org.models import Department
    from weiying.wechat.directory import Directory

    Department.objects.filter(pk=company.team_a.pk).update(wecom_id="3")
    Department.objects.filter(pk=company.team_b.pk).update(wecom_id="5")
    org.set_wecom_userid(actor=None, employee=company.rep_a, wecom_userid="lilei", check=False)
    run = Directory(api=None)  # both departments are known: no call to WeCom

    run.upsert_user({"userid": "lilei", "name": "李销售", "department": [5],
                     "position": "资深销售"})

    assert (run.counts["employees_updated"], run.counts["employees_transferred"]) == (1, 1)
    today = timezone.localdate()
    rows = assert_history_holds(company.rep_a)
    assert [(r.department_id, r.position, r.starts_on) for r in rows] == [
        (company.team_a.pk, "", history.BEGINNING), (company.team_b.pk, "资深销售", today)]
    assert AuditLog.objects.filter(action="employee.transfer",
                                   object_id=str(company.rep_a.pk)).count() == 1
