"""Setting targets, decomposing them down the pyramid and over time (the parts add up to the
fen), and the bottom-up check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import user_of
from tests.performance.helpers import put_facts
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.performance import targets
from weiying.performance.models import Target
from weiying.performance.selectors import Period
from weiying.performance.targets import bottom_up, decompose, set_target, split

MARCH = Period.month(2026, 3)
D = Decimal


@pytest.fixture(autouse=True)
def _english(english: None) -> None:
    """Messages are asserted in English (the msgids); the pages ask for English too."""


def parts_of(target: Target) -> dict[str, Decimal]:
    return {(p.employee.number if p.employee_id else p.department.name)
            + ("" if p.kind == target.kind or p.kind == "year" else f"@{p.start:%m}"): p.value
            for p in Target.objects.filter(parent=target).select_related("employee",
                                                                         "department")}


def test_a_manager_sets_a_reps_target_with_audit_and_event(company: Any) -> None:
    target = set_target(actor=user_of(company.manager_a), kpi="signed_amount", period=MARCH,
                        employee=company.rep_a, value="12000.456")
    assert target.value == D("12000.46")
    assert target.holder_id == company.team_a.pk and target.end == dt.date(2026, 3, 31)
    assert AuditLog.objects.filter(action="target.set", object_id=str(target.pk)).count() == 1
    assert DomainEvent.objects.filter(name="target.set", subject_id=str(target.pk)).exists()

    # setting the same value again writes nothing
    set_target(actor=user_of(company.manager_a), kpi="signed_amount", period=MARCH,
               employee=company.rep_a, value="12000.46")
    assert AuditLog.objects.filter(action="target.set").count() == 1


def test_who_may_set_which_target(company: Any) -> None:
    with pytest.raises(PermissionDenied):
        set_target(actor=user_of(company.rep_a), kpi="leads", period=MARCH,
                   employee=company.rep_a2, value=5)
    with pytest.raises(NotFound):
        set_target(actor=user_of(company.manager_b), kpi="leads", period=MARCH,
                   employee=company.rep_a, value=5)
    with pytest.raises(PermissionDenied) as own:
        set_target(actor=user_of(company.manager_a), kpi="leads", period=MARCH,
                   employee=company.manager_a, value=5)
    assert own.value.code == "own_target"
    with pytest.raises(PermissionDenied):
        set_target(actor=user_of(company.manager_a), kpi="leads", period=MARCH,
                   department=company.team_a, value=5)
    set_target(actor=user_of(company.director), kpi="leads", period=MARCH,
               department=company.team_a, value=5)
    with pytest.raises(PermissionDenied):
        set_target(actor=user_of(company.finance), kpi="leads", period=MARCH,
                   department=company.team_a, value=5)
    assert Target.objects.count() == 1


@pytest.mark.parametrize(("kpi", "value", "message"), [
    ("signed_amount", "-1", "cannot be negative"),
    ("win_rate", "1.2", "at most 100%"),
    ("leads", "2.5", "whole number"),
    ("leads", "many", "not a number"),
])
def test_bad_values_are_refused(company: Any, kpi: str, value: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        set_target(actor=user_of(company.manager_a), kpi=kpi, period=MARCH,
                   employee=company.rep_a, value=value)
    assert message in str(exc.value.message)
    assert not Target.objects.exists()


def test_a_period_must_be_whole_and_a_line_only_for_per_line_kpis(company: Any) -> None:
    with pytest.raises(ValidationFailed):
        set_target(actor=user_of(company.manager_a), kpi="leads",
                   period=Period(dt.date(2026, 3, 1), dt.date(2026, 3, 15)),
                   employee=company.rep_a, value=5)
    with pytest.raises(ValidationFailed) as exc:
        set_target(actor=user_of(company.manager_a), kpi="leads", period=MARCH,
                   employee=company.rep_a, value=5, line="硬件")
    assert "product line" in str(exc.value.message)
    t = set_target(actor=user_of(company.manager_a), kpi="signed_amount", period=MARCH,
                   employee=company.rep_a, value=5, line="硬件")
    assert t.line == "硬件"


def test_split_adds_up_to_the_fen() -> None:
    assert split(D("1000.00"), [D(1)] * 3, D("0.01")) == [D("333.33"), D("333.33"),
                                                          D("333.34")]
    assert split(D("100.00"), [D(1), D(2), D(4)], D("0.01")) == [
        D("14.29"), D("28.57"), D("57.14")]
    # ten leads over twelve months spread, never below zero, adding up
    months = split(D(10), [D(1)] * 12, D(1), remainder_last=False)
    assert sum(months) == 10 and min(months) == 0 and max(months) == 1
    # money that would overshoot falls back to the running total
    odd = split(D("0.02"), [D(1), D(1), D(1)], D("0.01"))
    assert sum(odd) == D("0.02") and min(odd) >= 0


def test_a_team_target_splits_equally_among_its_members_to_the_fen(company: Any) -> None:
    team = set_target(actor=user_of(company.admin), kpi="signed_amount", period=MARCH,
                      department=company.team_a, value="1000.00")
    parts = decompose(actor=user_of(company.admin), target=team, method="equal")
    # E020 (the manager), E030, E031 by number: the last takes the remainder
    assert [p.value for p in parts] == [D("333.33"), D("333.33"), D("333.34")]
    assert sum(p.value for p in parts) == D("1000.00")
    assert all(p.parent_id == team.pk for p in parts)
    assert DomainEvent.objects.filter(name="target.decomposed").count() == 1

    # the manager decomposing leaves themself out: their team's target is theirs to carry
    director_set = set_target(actor=user_of(company.director), kpi="leads", period=MARCH,
                              department=company.team_a, value=7)
    parts = decompose(actor=user_of(company.manager_a), target=director_set)
    assert parts_of(director_set) == {"E030": D(4), "E031": D(3)}

    # re-running changes nothing
    audits = AuditLog.objects.filter(action="target.set").count()
    decompose(actor=user_of(company.manager_a), target=director_set)
    assert AuditLog.objects.filter(action="target.set").count() == audits


def test_a_branch_target_splits_by_headcount_over_teams_and_direct_members(
        company: Any) -> None:
    east = set_target(actor=user_of(company.admin), kpi="collected", period=MARCH,
                      department=company.east, value="900.00")
    decompose(actor=user_of(company.admin), target=east, method="headcount")
    # 上海一组 has three people, the director is the branch's one direct member
    assert parts_of(east) == {"上海一组": D("675.00"), "E010": D("225.00")}


def test_a_split_by_last_years_share(company: Any) -> None:
    put_facts([(company.rep_a, dt.date(2025, 3, 3), "signed_amount", 30000),
               (company.rep_a2, dt.date(2025, 3, 9), "signed_amount", 10000),
               (company.rep_b, dt.date(2025, 3, 9), "signed_amount", 99999)])
    team = set_target(actor=user_of(company.director), kpi="signed_amount", period=MARCH,
                      department=company.team_a, value="1000.00")
    decompose(actor=user_of(company.manager_a), target=team, method="last_year")
    assert parts_of(team) == {"E030": D("750.00"), "E031": D("250.00")}

    leads = set_target(actor=user_of(company.director), kpi="leads", period=MARCH,
                       department=company.team_a, value=10)
    with pytest.raises(ValidationFailed) as exc:
        decompose(actor=user_of(company.manager_a), target=leads, method="last_year")
    assert "equally or by headcount" in str(exc.value.message)
    assert not Target.objects.filter(parent=leads).exists()


def test_a_ratio_target_is_copied_not_split(company: Any) -> None:
    team = set_target(actor=user_of(company.director), kpi="win_rate", period=MARCH,
                      department=company.team_a, value="0.35")
    decompose(actor=user_of(company.manager_a), target=team, method="equal")
    assert parts_of(team) == {"E030": D("0.35"), "E031": D("0.35")}


def test_a_year_splits_into_months_and_quarters(company: Any) -> None:
    year = set_target(actor=user_of(company.manager_a), kpi="signed_amount",
                      period=Period.year(2026), employee=company.rep_a, value="100000.00")
    months = decompose(actor=user_of(company.manager_a), target=year, into="months")
    assert [p.start.month for p in months] == list(range(1, 13))
    assert [p.value for p in months] == [D("8333.33")] * 11 + [D("8333.37")]
    assert all(p.kind == "month" and p.employee_id == company.rep_a.pk for p in months)
    quarters = decompose(actor=user_of(company.manager_a), target=year, into="quarters")
    assert [p.value for p in quarters] == [D("25000.00")] * 4

    with pytest.raises(ValidationFailed):
        decompose(actor=user_of(company.manager_a), target=months[0], into="months")
    with pytest.raises(ValidationFailed):
        decompose(actor=user_of(company.manager_a), target=year, into="months",
                  method="headcount")


def test_a_quarter_splits_by_last_years_months(company: Any) -> None:
    put_facts([(company.rep_a, dt.date(2025, 1, 3), "leads", 1),
               (company.rep_a, dt.date(2025, 3, 3), "leads", 3)])
    q1 = set_target(actor=user_of(company.manager_a), kpi="leads",
                    period=Period.quarter(2026, 1), employee=company.rep_a, value=40)
    parts = decompose(actor=user_of(company.manager_a), target=q1, into="months",
                      method="last_year")
    assert [p.value for p in parts] == [D(10), D(0), D(30)]


def test_a_rep_and_an_outsider_cannot_decompose(company: Any) -> None:
    team = set_target(actor=user_of(company.director), kpi="leads", period=MARCH,
                      department=company.team_a, value=10)
    with pytest.raises(PermissionDenied):
        decompose(actor=user_of(company.rep_a), target=team)
    with pytest.raises(NotFound):
        decompose(actor=user_of(company.manager_b), target=team)
    assert not Target.objects.filter(parent=team).exists()


def test_bottom_up_shows_the_gap_and_who_is_not_set(company: Any) -> None:
    director = user_of(company.director)
    set_target(actor=director, kpi="signed_amount", period=MARCH, department=company.team_a,
               value="1000.00")
    set_target(actor=director, kpi="signed_amount", period=MARCH, employee=company.rep_a,
               value="400.00")
    set_target(actor=director, kpi="signed_amount", period=MARCH, employee=company.rep_a2,
               value="350.50")
    check = bottom_up(director, department=company.team_a, period=MARCH, kpi="signed_amount")
    assert check.own == D("1000.00")
    assert check.children_sum == D("750.50")
    assert check.gap == D("249.50")
    assert {p.label: p.is_set for p in check.parts} == {"王经理": False, "李销售": True,
                                                        "赵销售": True}
    assert [p.label for p in check.missing] == ["王经理"]

    # the branch: its team set, its one direct member (the director) not
    east = bottom_up(user_of(company.admin), department=company.east, period=MARCH,
                     kpi="signed_amount")
    assert east.own is None and east.gap is None
    assert {p.label: p.value for p in east.parts} == {"上海一组": D("1000.00"), "周总监": None}

    # a ratio has no gap, only who is set
    set_target(actor=director, kpi="win_rate", period=MARCH, employee=company.rep_a,
               value="0.3")
    ratio = bottom_up(director, department=company.team_a, period=MARCH, kpi="win_rate")
    assert ratio.gap is None and len(ratio.missing) == 2

    with pytest.raises(NotFound):
        bottom_up(user_of(company.manager_b), department=company.team_a, period=MARCH,
                  kpi="signed_amount")


def test_targets_are_seen_through_the_scope(company: Any) -> None:
    director = user_of(company.director)
    set_target(actor=director, kpi="leads", period=MARCH, department=company.team_a, value=9)
    set_target(actor=director, kpi="leads", period=MARCH, employee=company.rep_a, value=5)
    set_target(actor=director, kpi="leads", period=MARCH, employee=company.rep_a2, value=4)
    set_target(actor=user_of(company.admin), kpi="leads", period=MARCH,
               employee=company.rep_b, value=3)

    def seen(employee: Any) -> set[str]:
        return {str(t.employee.number if t.employee_id else t.department.name)
                for t in targets.target_list(user_of(employee), period=MARCH)}

    assert seen(company.rep_a) == {"E030"}
    assert seen(company.manager_a) == {"上海一组", "E030", "E031"}
    assert seen(company.manager_b) == {"E050"}
    assert seen(company.admin) == {"上海一组", "E030", "E031", "E050"}


# --- the desk pages -----------------------------------------------------------------------------
def _url(company: Any, path: str) -> str:
    for name in ("team_a", "team_b", "east", "rep_a", "rep_a2", "rep_b"):
        path = path.replace(f"<{name}>", str(getattr(company, name).pk))
    return path


@pytest.mark.parametrize(("who", "path", "status"), [
    ("rep_a", "/performance/targets/", 200),
    ("rep_a", "/performance/targets/?department=<team_a>", 200),
    ("rep_a", "/performance/targets/?export=xlsx", 403),
    ("rep_a", "/performance/targets/import/", 403),
    ("rep_a", "/performance/kpis/", 200),
    ("manager_a", "/performance/targets/?department=<team_a>", 200),
    ("manager_a", "/performance/targets/?department=<team_b>", 404),
    ("manager_a", "/performance/targets/?export=csv", 200),
    ("manager_a", "/performance/targets/?export=csv&department=<team_b>", 404),
    ("manager_a", "/performance/targets/import/", 200),
    ("finance", "/performance/targets/import/", 403),
])
def test_target_pages_keep_to_the_scope(company: Any, login: Any, who: str, path: str,
                                        status: int) -> None:
    assert login(getattr(company, who)).get(_url(company, path)).status_code == status


def test_the_targets_page_lists_the_scope_and_shows_the_bottom_up_check(
        company: Any, login: Any) -> None:
    director = user_of(company.director)
    set_target(actor=director, kpi="signed_amount", period=MARCH, department=company.team_a,
               value="1000.00")
    set_target(actor=director, kpi="signed_amount", period=MARCH, employee=company.rep_a,
               value="400.00")
    set_target(actor=user_of(company.admin), kpi="signed_amount", period=MARCH,
               employee=company.rep_b, value="777.00")
    html = login(company.manager_a, language="en").get(
        f"/performance/targets/?period=2026-03&department={company.team_a.pk}"
        "&kpi=signed_amount").content.decode()
    assert 'data-testid="bottom-up"' in html and "¥600.00" in html  # the gap
    assert "¥777.00" not in html
    rep = login(company.rep_a, language="en").get(
        "/performance/targets/?period=2026-03").content.decode()
    assert "¥400.00" in rep and "¥1,000.00" not in rep and 'data-testid="target-form"' not in rep
    body = login(company.manager_a, language="en").get(
        "/performance/targets/?period=2026-03&export=csv").content.decode("utf-8-sig")
    assert "E030" in body and "E050" not in body


def test_setting_and_decomposing_from_the_page(company: Any, login: Any) -> None:
    client = login(company.director, language="en")
    response = client.post("/performance/targets/set/", {
        "subject": f"d:{company.team_a.pk}", "kpi": "signed_amount", "period": "2026-03",
        "value": "900", "back": "period=2026-03"})
    assert response.status_code == 302 and response["Location"].endswith("?period=2026-03")
    team = Target.objects.get(department=company.team_a)
    assert team.value == D("900.00")
    response = client.post(f"/performance/targets/{team.pk}/decompose/",
                           {"method": "equal", "into": "members"})
    assert response.status_code == 302
    assert sorted(Target.objects.filter(parent=team).values_list("value", flat=True)) == [
        D("300.00")] * 3
    # a bad value is refused with its message and changes nothing
    client.post("/performance/targets/set/", {
        "subject": f"e:{company.rep_a.pk}", "kpi": "signed_amount", "period": "2026-03",
        "value": "-5"})
    assert Target.objects.get(employee=company.rep_a).value == D("300.00")
    page = client.get("/performance/targets/?period=2026-03").content.decode()
    assert "cannot be negative" in page


@pytest.mark.parametrize(("who", "subject", "status", "written"), [
    ("rep_a", "e:<rep_a2>", 403, False),
    ("manager_a", "e:<rep_b>", 404, False),
    ("manager_a", "d:<team_b>", 404, False),
    ("manager_a", "e:<rep_a>", 302, True),
])
def test_writing_targets_needs_the_permission_and_the_scope(
        company: Any, login: Any, who: str, subject: str, status: int, written: bool) -> None:
    response = login(getattr(company, who)).post("/performance/targets/set/", {
        "subject": _url(company, subject), "kpi": "leads", "period": "2026-03", "value": "5"})
    assert response.status_code == status
    assert Target.objects.exists() is written


def test_decomposing_from_the_page_is_scoped(company: Any, login: Any) -> None:
    team = set_target(actor=user_of(company.director), kpi="leads", period=MARCH,
                      department=company.team_a, value=10)
    assert login(company.manager_b).post(
        f"/performance/targets/{team.pk}/decompose/").status_code == 404
    assert login(company.rep_a).post(
        f"/performance/targets/{team.pk}/decompose/").status_code == 403
    assert not Target.objects.filter(parent=team).exists()


def test_the_import_page_shows_the_row_report_and_writes_nothing(company: Any,
                                                                 login: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("t.csv", "工号,指标,期间,目标值\nE030,leads,2026-03,5\nE999,leads,"
                             "2026-03,5\n".encode())
    response = login(company.manager_a, language="en").post("/performance/targets/import/",
                                                           {"file": bad})
    assert response.status_code == 400
    assert "There is no employee with number E999" in response.content.decode()
    assert not Target.objects.exists()
    good = SimpleUploadedFile("t.csv", "工号,指标,期间,目标值\nE030,leads,2026-03,5\n".encode())
    response = login(company.manager_a, language="en").post("/performance/targets/import/",
                                                           {"file": good})
    assert response.status_code == 200 and Target.objects.get().value == 5


def test_the_kpi_catalogue_and_a_custom_kpi(company: Any, login: Any) -> None:
    from weiying.performance.models import Kpi

    html = login(company.rep_a, language="en").get("/performance/kpis/").content.decode()
    assert "won / (won + lost)" in html and 'data-testid="kpi-form"' not in html
    assert login(company.rep_a).post("/performance/kpis/", {
        "code": "avg_deal", "name": "Avg", "unit": "money", "direction": "up",
        "formula": "signed_amount / signed_contracts"}).status_code == 403
    response = login(company.manager_a, language="en").post("/performance/kpis/", {
        "code": "avg_deal", "name": "Average deal", "unit": "money", "direction": "up",
        "formula": "signed_amount / signed_contracts"})
    assert response.status_code == 302
    assert Kpi.objects.get(code="avg_deal").is_builtin is False
    bad = login(company.manager_a, language="en").post("/performance/kpis/", {
        "code": "bad", "name": "Bad", "unit": "money", "direction": "up",
        "formula": "nothing_known"})
    assert bad.status_code == 400 and "neither a measure nor a KPI" in bad.content.decode()
