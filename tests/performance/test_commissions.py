"""Commission statements end to end (records → facts → statement, cash and recognised revenue),
the approval rules, and the data-scope matrix of every commission page, the payroll export, the
phone pages and the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import user_of
from tests.finance.conftest import buyer, deal, products  # noqa: F401 - fixtures
from tests.performance.helpers import put_facts
from weiying.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.performance import commissions as svc
from weiying.performance import targets
from weiying.performance.models import CommissionStatement
from weiying.performance.selectors import Period
from weiying.pipeline.services import contracts as contracts_svc

D = Decimal
MARCH = Period.month(2026, 3)
STANDARD = [{"from_pct": "0", "to_pct": "80", "rate": "2"},
            {"from_pct": "80", "to_pct": "100", "rate": "3"},
            {"from_pct": "100", "to_pct": "", "rate": "5"}]
BASE = "/performance/commissions/"
API = "/api/commissions"


@pytest.fixture(autouse=True)
def _english(english: None) -> None:
    """Messages are asserted in English (the msgids)."""


def plan(company: Any, **options: Any) -> Any:
    values = {"name": "销售提成", "basis": "collected", "valid_from": "2026-01-01",
              "tiers": STANDARD, **options}
    return svc.save_plan(actor=user_of(company.finance), **values)


def target(company: Any, employee: Any, value: str, kpi: str = "collected") -> None:
    targets.set_target(actor=user_of(company.admin), kpi=kpi, period=MARCH, value=value,
                       employee=employee)


# --- end to end --------------------------------------------------------------------------------
@pytest.mark.usefixtures("events_at_once")
def test_statement_from_receipts_and_recognised_revenue(company: Any, request: Any) -> None:
    boxes, sign = request.getfixturevalue("products").box, request.getfixturevalue("deal")
    # Rep A signs 10 boxes at ¥1,130.00 (VAT 13 % included: ¥10,000.00 net) on 03-02; the
    # customer pays ¥11,300.00 on 03-05 and accepts the delivery on 03-12, so ¥10,000.00 of
    # revenue is recognised in March.
    contract = sign([{"product": boxes, "quantity": "10", "unit_price": "1130.00"}],
                    signed_on=dt.date(2026, 3, 2))
    contracts_svc.record_receipt(actor=user_of(company.finance), contract=contract,
                                 amount=D("11300.00"), received_on=dt.date(2026, 3, 5),
                                 method="bank")
    contract.refresh_from_db()
    contracts_svc.record_delivery(actor=user_of(company.operations), contract=contract,
                                  delivered_on=dt.date(2026, 3, 10))
    contract.refresh_from_db()
    contracts_svc.record_acceptance(actor=user_of(company.operations), contract=contract,
                                    accepted_on=dt.date(2026, 3, 12))
    # Cash plan, whole: ¥11,300.00 on a target of ¥10,000.00 is 113 % → 5 % = ¥565.00.
    plan(company, department=company.team_a)
    target(company, company.rep_a, "10000")
    # Revenue plan, banded: ¥10,000.00 on a revenue target of ¥12,500.00 is 80 %: all of it
    # in the first band (0–80 %) at 2 % = ¥200.00; nothing above 80 %.
    plan(company, name="收入提成", basis="revenue", accumulation="banded",
         department=company.team_a)
    target(company, company.rep_a, "12500", kpi="revenue")

    result = svc.compute_month(actor=user_of(company.finance), month="2026-03",
                               employees=[company.rep_a])
    statement = result.statements[0]
    lines = {x.plan.name: x for x in statement.lines.all()}
    cash, revenue = lines["销售提成"], lines["收入提成"]
    assert (cash.basis, cash.achievement, cash.tier, cash.amount) == (
        D("11300.00"), D("113.0000"), 3, D("565.00"))
    assert (revenue.basis, revenue.achievement, revenue.tier, revenue.amount) == (
        D("10000.00"), D("80.0000"), 2, D("200.00"))
    assert statement.amount == D("765.00") and statement.basis == D("21300.00")
    assert statement.department_id == company.team_a.pk
    assert AuditLog.objects.filter(action="commission.computed",
                                   object_id=str(statement.pk)).exists()
    assert DomainEvent.objects.filter(name="commission.computed",
                                      subject_id=str(statement.pk)).exists()
    page = request.getfixturevalue("login")(company.manager_a, language="en").get(
        f"{BASE}{statement.pk}/").content.decode()
    assert "tier 1: ¥10000.00 × 2% = ¥200.00" in page
    assert "¥565.00" in page and "¥765.00" in page


# --- approval ----------------------------------------------------------------------------------
@pytest.fixture
def march(company: Any) -> dict[int, CommissionStatement]:
    """Everyone in the company covered by one plan; rep A collected ¥50,000.00, rep B
    ¥30,000.00 (no targets: 2 %)."""
    plan(company)
    put_facts([(company.rep_a, dt.date(2026, 3, 3), "collected", 5_000_000),
               (company.rep_b, dt.date(2026, 3, 4), "collected", 3_000_000)])
    result = svc.compute_month(actor=user_of(company.finance), month="2026-03")
    return {s.employee_id: s for s in result.statements}


def submitted(company: Any, statement: CommissionStatement) -> CommissionStatement:
    return svc.submit_statement(actor=user_of(company.finance), statement=statement)


def test_the_managers_approve_and_the_statement_is_final(company: Any, march: Any) -> None:
    statement = submitted(company, march[company.rep_a.pk])
    assert statement.amount == D("1000.00")
    approved = svc.approve_statement(actor=user_of(company.manager_a), statement=statement)
    assert approved.status == "approved" and approved.approved_by_id == company.manager_a.user_id
    assert approved.approved_at is not None
    assert [e.name for e in DomainEvent.objects.filter(
        subject_id=str(statement.pk), name__startswith="commission.").order_by("id")] == [
        "commission.computed", "commission.submitted", "commission.approved"]
    assert AuditLog.objects.filter(action="commission.approved",
                                   object_id=str(statement.pk)).count() == 1
    with pytest.raises(InvalidTransition):
        svc.reject_statement(actor=user_of(company.manager_a), statement=statement,
                             reason="晚了")
    with pytest.raises(InvalidTransition):
        submitted(company, statement)


def test_nobody_approves_their_own_and_a_manager_outside_is_refused(company: Any,
                                                                    march: Any) -> None:
    own = submitted(company, march[company.manager_a.pk])
    with pytest.raises(PermissionDenied) as caught:
        svc.approve_statement(actor=user_of(company.manager_a), statement=own)
    assert caught.value.code == "own_statement"
    assert str(caught.value.message) == ("You cannot approve or reject your own commission; "
                                         "your manager does.")
    rep = submitted(company, march[company.rep_a.pk])
    with pytest.raises(PermissionDenied):  # a rep has no commission.approve at all
        svc.approve_statement(actor=user_of(company.rep_a), statement=rep)
    with pytest.raises(PermissionDenied):  # nor has finance, who prepares them
        svc.approve_statement(actor=user_of(company.finance), statement=rep)
    with pytest.raises(NotFound):  # another branch's manager does not see it
        svc.approve_statement(actor=user_of(company.manager_b), statement=rep)
    assert CommissionStatement.objects.get(pk=rep.pk).status == "submitted"
    # The director above both may approve the manager's own.
    svc.approve_statement(actor=user_of(company.director), statement=own)
    assert CommissionStatement.objects.get(pk=own.pk).status == "approved"


def test_only_a_submitted_statement_is_approved_and_rejection_needs_a_reason(
        company: Any, march: Any) -> None:
    draft = march[company.rep_a.pk]
    with pytest.raises(InvalidTransition):
        svc.approve_statement(actor=user_of(company.manager_a), statement=draft)
    statement = submitted(company, draft)
    with pytest.raises(ValidationFailed):
        svc.reject_statement(actor=user_of(company.manager_a), statement=statement, reason=" ")
    rejected = svc.reject_statement(actor=user_of(company.manager_a), statement=statement,
                                    reason="回款未到账")
    assert (rejected.status, rejected.rejected_reason) == ("rejected", "回款未到账")
    with pytest.raises(InvalidTransition):  # a rejected one is recomputed before resubmitting
        submitted(company, rejected)
    again = svc.recompute_statement(actor=user_of(company.finance), statement=rejected)
    assert (again.pk, again.status, again.rejected_reason) == (statement.pk, "draft", "")


def test_the_first_of_the_month_drafts_last_months_statements_and_keeps_submitted_ones(
        company: Any, march: Any) -> None:
    from weiying.performance.tasks_commissions import draft_last_month

    submitted(company, march[company.rep_b.pk])
    put_facts([(company.rep_a, dt.date(2026, 3, 20), "collected", 1_000_000)])

    result = draft_last_month(today=dt.date(2026, 4, 1))

    again = {s.employee_id: s for s in result.statements}
    assert again[company.rep_a.pk].basis == Decimal("60000.00")  # the late receipt counted
    assert again[company.rep_a.pk].status == "draft"
    assert again[company.rep_a.pk].computed_by is None  # the system, not a login
    assert company.rep_b.pk not in again
    assert [e.pk for e, _why in result.skipped] == [company.rep_b.pk]
    assert CommissionStatement.objects.get(employee=company.rep_b, month=dt.date(2026, 3, 1)
                                           ).status == "submitted"


def test_a_submitted_statement_is_not_recomputed(company: Any, march: Any) -> None:
    statement = submitted(company, march[company.rep_a.pk])
    with pytest.raises(svc.Conflict) as caught:
        svc.recompute_statement(actor=user_of(company.finance), statement=statement)
    assert str(caught.value.message) == ("The statement of 李销售 for 2026-03 is waiting for "
                                         "approval; have it rejected first, then recompute it.")


# --- the scope matrix --------------------------------------------------------------------------
# Who sees whose statement (everyone in the company has one for March).
SEES = {
    "rep_a": {"rep_a"},
    "rep_b": {"rep_b"},
    "manager_a": {"manager_a", "rep_a", "rep_a2"},
    "director": {"director", "manager_a", "rep_a", "rep_a2"},
    "manager_b": {"manager_b", "rep_b"},
    "finance": "all",
    "admin": "all",
}
EVERYONE = ["admin", "director", "manager_a", "rep_a", "rep_a2", "manager_b", "rep_b",
            "finance", "operations"]


def seen(company: Any, persona: str) -> set[int]:
    names = EVERYONE if SEES[persona] == "all" else SEES[persona]
    return {getattr(company, n).pk for n in names}


def ids_in(html: str) -> set[int]:
    import re

    return {int(x) for x in re.findall(r'data-statement="(\d+)"', html)}


def by_employee(march: Any) -> dict[int, int]:
    return {s.pk: s.employee_id for s in march.values()}


@pytest.mark.parametrize("persona", list(SEES))
def test_desk_list_detail_and_phone_keep_to_the_scope(company: Any, march: Any, login: Any,
                                                      persona: str) -> None:
    client = login(getattr(company, persona))
    owner = by_employee(march)
    response = client.get(BASE, {"month": "2026-03"})
    assert response.status_code == 200
    assert {owner[i] for i in ids_in(response.content.decode())} == seen(company, persona)
    for statement in march.values():
        status = client.get(f"{BASE}{statement.pk}/").status_code
        assert status == (200 if statement.employee_id in seen(company, persona) else 404)
    # The phone pages list one's own statement only, and no one else's opens.
    me = getattr(company, persona)
    phone = client.get("/m/commissions/")
    assert {owner[i] for i in ids_in(phone.content.decode())} == {me.pk}
    for statement in march.values():
        status = client.get(f"/m/commissions/{statement.pk}/").status_code
        assert status == (200 if statement.employee_id == me.pk else 404)


@pytest.mark.parametrize("persona", list(SEES))
def test_api_keeps_to_the_scope(company: Any, march: Any, login: Any, persona: str) -> None:
    client = login(getattr(company, persona))
    body = client.get(f"{API}/statements", {"month": "2026-03", "limit": 200}).json()
    assert {x["employee_id"] for x in body["items"]} == seen(company, persona)
    for statement in march.values():
        status = client.get(f"{API}/statements/{statement.pk}").status_code
        assert status == (200 if statement.employee_id in seen(company, persona) else 404)


def test_api_gives_the_payroll_figures(company: Any, march: Any, login: Any) -> None:
    svc.approve_statement(actor=user_of(company.manager_a),
                          statement=submitted(company, march[company.rep_a.pk]))
    body = login(company.finance).get(f"{API}/statements", {"month": "2026-03",
                                                            "status": "approved"}).json()
    assert len(body["items"]) == 1
    item = body["items"][0]
    assert (item["employee_number"], item["month"], item["basis"], item["amount"],
            item["status"], item["achievement"]) == ("E030", "2026-03", "50000.00", "1000.00",
                                                     "approved", None)
    assert item["lines"][0]["rate"] == "2" and item["lines"][0]["tier"] == 1
    bad = login(company.finance).get(f"{API}/statements", {"month": "2026-13"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    outside = login(company.manager_b).get(f"{API}/statements",
                                           {"month": "2026-03", "department_id":
                                            company.team_a.pk})
    assert outside.status_code == 404


def _csv(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("persona", list(SEES))
def test_payroll_export_keeps_to_the_scope_and_is_audited(company: Any, march: Any,
                                                          login: Any, persona: str) -> None:
    client = login(getattr(company, persona))
    response = client.get(BASE, {"month": "2026-03", "export": "csv"})
    if persona.startswith("rep"):
        assert response.status_code == 403  # reps have no export permission
        return
    rows = _csv(response)
    numbers = {getattr(company, n).number: getattr(company, n).pk for n in EVERYONE}
    assert {numbers[r[0]] for r in rows[1:]} == seen(company, persona)
    assert AuditLog.objects.filter(action="export",
                                   object_type="performance.commissionstatement").exists()


def test_payroll_export_columns(company: Any, march: Any, login: Any) -> None:
    from weiying.performance.views_commissions import HAS_PAYROLL_NUMBER

    rows = _csv(login(company.finance).get(BASE, {"month": "2026-03", "export": "csv",
                                                  "department": company.team_a.pk}))
    heads = ["工号", "姓名", "部门", "月份", "计提基数", "达成率", "提成金额", "状态"]
    assert rows[0] == heads + (["工资号"] if HAS_PAYROLL_NUMBER else [])
    mine = next(r for r in rows[1:] if r[0] == "E030")
    assert mine[:7] == ["E030", "李销售", "上海一组", "2026-03", "50000.00", "", "1000.00"]
    assert len(rows) == 4  # team A: manager A, rep A, rep A2
    xlsx = login(company.finance).get(BASE, {"month": "2026-03", "export": "xlsx"})
    assert xlsx.status_code == 200 and xlsx["Content-Disposition"].endswith('.xlsx"')


def test_actions_outside_the_scope_are_404_and_change_nothing(company: Any, march: Any,
                                                              login: Any) -> None:
    statement = submitted(company, march[company.rep_a.pk])
    client = login(company.manager_b)
    for action in ("approve", "reject", "submit", "recompute"):
        response = client.post(f"{BASE}{statement.pk}/{action}/", {"reason": "x"})
        assert response.status_code == 404
    assert CommissionStatement.objects.get(pk=statement.pk).status == "submitted"
    # A rep cannot approve (their own): refused, unchanged.
    response = login(company.rep_a).post(f"{BASE}{statement.pk}/approve/")
    assert response.status_code == 403
    assert CommissionStatement.objects.get(pk=statement.pk).status == "submitted"
    # Their manager can.
    response = login(company.manager_a).post(f"{BASE}{statement.pk}/approve/")
    assert response.status_code == 302
    assert CommissionStatement.objects.get(pk=statement.pk).status == "approved"


def test_own_statement_approval_on_the_page_says_why(company: Any, march: Any,
                                                    login: Any) -> None:
    own = submitted(company, march[company.manager_a.pk])
    client = login(company.manager_a, language="en")
    response = client.post(f"{BASE}{own.pk}/approve/", follow=True)
    assert "You cannot approve or reject your own commission" in response.content.decode()
    assert CommissionStatement.objects.get(pk=own.pk).status == "submitted"
    page = client.get(f"{BASE}{own.pk}/").content.decode()
    assert 'data-testid="approve"' not in page
    other = submitted(company, march[company.rep_a.pk])
    assert 'data-testid="approve"' in client.get(f"{BASE}{other.pk}/").content.decode()


@pytest.mark.parametrize(("persona", "plans", "edit", "compute"), [
    ("rep_a", 403, 403, 403), ("manager_a", 200, 403, 403), ("director", 200, 403, 403),
    ("finance", 200, 200, 302), ("admin", 200, 200, 302),
])
def test_plan_pages_and_compute_need_their_permission(company: Any, march: Any, login: Any,
                                                      persona: str, plans: int, edit: int,
                                                      compute: int) -> None:
    client = login(getattr(company, persona))
    plan_id = next(iter(march.values())).lines.first().plan_id
    assert client.get(f"{BASE}plans/").status_code == plans
    assert client.get(f"{BASE}plans/new/").status_code == edit
    assert client.get(f"{BASE}plans/{plan_id}/").status_code == edit
    before = CommissionStatement.objects.filter(status="draft").count()
    assert client.post(f"{BASE}compute/", {"month": "2026-03"}).status_code == compute
    assert CommissionStatement.objects.filter(status="draft").count() == before


def test_plan_form_saves_tiers_and_shows_every_problem(company: Any, login: Any) -> None:
    client = login(company.finance, language="en")
    form = {"name": "新方案", "basis": "collected", "accumulation": "banded", "floor": "0",
            "valid_from": "2026-01-01", "is_active": "on",
            "tiers-TOTAL_FORMS": "3", "tiers-INITIAL_FORMS": "0",
            "tiers-0-from_pct": "0", "tiers-0-to_pct": "80", "tiers-0-rate": "2",
            "tiers-1-from_pct": "90", "tiers-1-to_pct": "", "tiers-1-rate": "3",
            "tiers-2-from_pct": "", "tiers-2-to_pct": "", "tiers-2-rate": ""}
    response = client.post(f"{BASE}plans/new/", form)
    assert response.status_code == 400
    assert ("Tier 1 ends at 80 % but tier 2 starts at 90 %, leaving a gap; make tier 2 start "
            "at 80 %." in response.content.decode())
    assert not svc.CommissionPlan.objects.exists()
    form["tiers-1-from_pct"] = "80"
    assert client.post(f"{BASE}plans/new/", form).status_code == 302
    saved = svc.CommissionPlan.objects.get()
    assert saved.accumulation == "banded"
    assert [(t.from_pct, t.to_pct) for t in saved.tiers.all()] == [(D(0), D(80)), (D(80), None)]
    edit = client.get(f"{BASE}plans/{saved.pk}/").content.decode()
    assert 'value="80"' in edit


def test_compute_from_the_page(company: Any, login: Any) -> None:
    plan(company, department=company.team_b)
    put_facts([(company.rep_b, dt.date(2026, 3, 4), "collected", 3_000_000)])
    response = login(company.finance).post(f"{BASE}compute/", {"month": "2026-03"})
    assert response.status_code == 302
    made = CommissionStatement.objects.get(employee=company.rep_b)
    assert made.amount == D("600.00")
    bad = login(company.finance, language="en").post(f"{BASE}compute/", {"month": "March"},
                                                     follow=True)
    assert bad.status_code == 200
    assert "March is not a period" in bad.content.decode()
    assert CommissionStatement.objects.count() == 2  # manager B and rep B only


def test_a_bad_filter_is_a_clear_400(company: Any, march: Any, login: Any) -> None:
    client = login(company.finance, language="en")
    response = client.get(BASE, {"month": "2026-03", "department": "abc"})
    assert response.status_code == 400
    assert "abc is not a department id" in response.content.decode()
    response = client.get(BASE, {"month": "2026-13"})
    assert response.status_code == 400 and "2026-13 is not a period" in response.content.decode()


def test_list_and_api_queries_do_not_grow_with_the_statements(
        company: Any, march: Any, login: Any, django_assert_max_num_queries: Any) -> None:
    client = login(company.finance)
    client.get(BASE, {"month": "2026-03"})  # warm the session and the caches
    with django_assert_max_num_queries(12):
        assert client.get(BASE, {"month": "2026-03"}).status_code == 200
    with django_assert_max_num_queries(10):
        body = client.get(f"{API}/statements", {"month": "2026-03"}).json()
    assert len(body["items"]) == len(march) == 9
