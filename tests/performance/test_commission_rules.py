"""Commission rules: the tiers a plan may have (every gap, overlap and bad rate refused with its
message, nothing saved), and the arithmetic of both accumulations on figures written straight
into the daily facts, each worked by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import user_of
from tests.performance.helpers import put_facts
from weiying.core.errors import Conflict, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog
from weiying.performance import commissions as svc
from weiying.performance import targets
from weiying.performance.models import (
    CommissionLine,
    CommissionPlan,
    CommissionStatement,
    CommissionTier,
)
from weiying.performance.selectors import Period

D = Decimal
MARCH = Period.month(2026, 3)
DAY = dt.date(2026, 3, 10)
STANDARD = [{"from_pct": "0", "to_pct": "80", "rate": "2"},
            {"from_pct": "80", "to_pct": "100", "rate": "3"},
            {"from_pct": "100", "to_pct": "", "rate": "5"}]


@pytest.fixture(autouse=True)
def english() -> Any:
    from django.utils import translation

    with translation.override("en"):
        yield


def plan(company: Any, tiers: list[dict[str, Any]] = STANDARD, **options: Any) -> Any:
    values = {"name": "销售提成", "basis": "collected", "valid_from": "2026-01-01",
              "department": company.team_a, **options}
    return svc.save_plan(actor=user_of(company.finance), tiers=tiers, **values)


def target(company: Any, employee: Any, value: str, *, kpi: str = "collected",
           line: str = "") -> None:
    targets.set_target(actor=user_of(company.admin), kpi=kpi, period=MARCH, value=value,
                       employee=employee, line=line)


def compute(company: Any, *people: Any) -> dict[int, Any]:
    result = svc.compute_month(actor=user_of(company.finance), month="2026-03",
                               employees=list(people) or None)
    return {s.employee_id: s for s in result.statements}


def only_line(statement: Any) -> CommissionLine:
    lines = list(statement.lines.all())
    assert len(lines) == 1
    return lines[0]


def nothing_saved() -> None:
    assert not CommissionPlan.objects.exists()
    assert not CommissionTier.objects.exists()
    assert not AuditLog.objects.filter(action="commission.plan_saved").exists()


# --- tiers -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tiers", "message"), [
    ([{"from_pct": "0", "to_pct": "80", "rate": "2"},
      {"from_pct": "80", "to_pct": "90", "rate": "3"},
      {"from_pct": "100", "to_pct": "", "rate": "5"}],
     "Tier 2 ends at 90 % but tier 3 starts at 100 %, leaving a gap; make tier 3 start at 90 %."),
    ([{"from_pct": "0", "to_pct": "80", "rate": "2"},
      {"from_pct": "70", "to_pct": "", "rate": "3"}],
     "Tier 1 ends at 80 % but tier 2 starts at 70 %, so they overlap; make tier 2 start at 80 %."),
    ([{"from_pct": "10", "to_pct": "", "rate": "2"}],
     "Tier 1 starts at 10 %; the first tier must start at the plan's floor, 0 %. Make tier 1 "
     "start at 0 %."),
    ([{"from_pct": "0", "to_pct": "", "rate": "120"}],
     "Tier 1's rate is 120 %; a rate must be between 0 % and 100 %."),
    ([{"from_pct": "0", "to_pct": "", "rate": "-1"}],
     "Tier 1's rate is -1 %; a rate must be between 0 % and 100 %."),
    ([{"from_pct": "0", "to_pct": "", "rate": "2"},
      {"from_pct": "80", "to_pct": "", "rate": "3"}],
     "Tiers 1, 2 have no end; only the last tier may be open-ended. Give the others an end."),
    ([{"from_pct": "0", "to_pct": "", "rate": "2"},
      {"from_pct": "80", "to_pct": "100", "rate": "3"}],
     "Tier 1 has no end, so it must be the last tier; give it an end where tier 2 starts, or "
     "remove the tiers after it."),
    ([{"from_pct": "0", "to_pct": "0", "rate": "2"}],
     "Tier 1 ends at 0 %, not above where it starts (0 %); make it end above 0 %."),
    ([{"from_pct": "0", "to_pct": "", "rate": "abc"}],
     "tier 1's rate: abc is not a number; write a percentage such as 80 or 7.5."),
    ([{"from_pct": "0", "to_pct": "", "rate": ""}],
     "tier 1's rate is missing; write a percentage such as 80 or 7.5."),
    ([], "A plan needs at least one tier; add one starting at 0 %."),
])
def test_bad_tiers_are_refused_with_their_message_and_nothing_is_saved(
        company: Any, tiers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan(company, tiers)
    assert str(caught.value.message) == message
    nothing_saved()


def test_the_gap_message_reads_in_chinese(company: Any) -> None:
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(ValidationFailed) as caught:
        plan(company, [{"from_pct": "0", "to_pct": "80", "rate": "2"},
                       {"from_pct": "90", "to_pct": "", "rate": "3"}])
    assert str(caught.value.message) == (
        "第 1 档止于 80 %，但第 2 档从 90 % 开始，中间有空档；请让第 2 档从 80 % 开始。")
    nothing_saved()


def test_every_problem_is_named_at_once(company: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan(company, [{"from_pct": "5", "to_pct": "80", "rate": "2"},
                       {"from_pct": "90", "to_pct": "", "rate": "200"}])
    fields = [e["field"] for e in caught.value.errors]
    assert fields == ["tiers.2.rate", "tiers.1.from_pct", "tiers.2.from_pct"]
    nothing_saved()


def test_a_declared_floor_is_where_the_tiers_start(company: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan(company, STANDARD, floor="60")
    assert str(caught.value.message).startswith(
        "Tier 1 starts at 0 %; the first tier must start at the plan's floor, 60 %.")
    nothing_saved()
    saved = plan(company, [{"from_pct": "60", "to_pct": "100", "rate": "3"},
                           {"from_pct": "100", "to_pct": "", "rate": "4"}], floor="60")
    assert [(t.seq, t.from_pct, t.to_pct, t.rate) for t in saved.tiers.all()] == [
        (1, D("60"), D("100"), D("3")), (2, D("100"), None, D("4"))]


def test_bad_plan_fields_are_refused(company: Any) -> None:
    cases = [({"name": " "}, "Give the plan a name."),
             ({"basis": "signed"}, "Pick the basis: collected cash or recognised revenue."),
             ({"kpi": "nope"}, "There is no active KPI nope; pick one from the KPI catalogue or "
                               "leave it empty for the basis's own."),
             ({"cap": "0"}, "A cap must be above zero; leave it empty for no cap."),
             ({"cap": "lots"}, "The cap lots is not an amount; write yuan, e.g. 20000 or "
                               "20000.00."),
             ({"valid_to": "2025-12-31"}, "The plan ends on 2025-12-31, before it starts "
                                          "(2026-01-01); make the end 2026-01-01 or later.")]
    for options, message in cases:
        with pytest.raises(ValidationFailed) as caught:
            plan(company, STANDARD, **options)
        assert str(caught.value.message) == message
    nothing_saved()


def test_only_commission_managers_save_plans(company: Any) -> None:
    for who in (company.rep_a, company.manager_a):
        with pytest.raises(PermissionDenied):
            svc.save_plan(actor=user_of(who), tiers=STANDARD, name="x",
                          valid_from="2026-01-01")
    nothing_saved()


def test_editing_a_plan_replaces_its_tiers_and_is_audited(company: Any) -> None:
    saved = plan(company)
    svc.save_plan(actor=user_of(company.finance), plan=saved, name="新方案",
                  valid_from="2026-01-01", tiers=[{"from_pct": "0", "rate": "4"}])
    saved.refresh_from_db()
    assert saved.name == "新方案"
    assert [(t.from_pct, t.to_pct, t.rate) for t in saved.tiers.all()] == [(D(0), None, D(4))]
    last = AuditLog.objects.filter(action="commission.plan_saved").order_by("-id").first()
    assert last.before["tiers"] == [["0.0000", "80.0000", "2.0000"],
                                    ["80.0000", "100.0000", "3.0000"],
                                    ["100.0000", None, "5.0000"]]


# --- the arithmetic, pure ----------------------------------------------------------------------
def tiers_of(rows: list[dict[str, Any]]) -> list[svc.TierIn]:
    return svc.check_tiers(rows)


@pytest.mark.parametrize(("achievement", "accumulation", "tier", "amount"), [
    # Basis 120,000.00 throughout. Whole: the tier reached applies to everything.
    ("120", "whole", 3, "6000.00"),      # 120,000 × 5 %
    ("100", "whole", 3, "6000.00"),      # exactly 100 % is tier 3 (a tier includes its start)
    ("99.9999", "whole", 2, "3600.00"),  # 120,000 × 3 %
    ("80", "whole", 2, "3600.00"),
    ("79.99", "whole", 1, "2400.00"),    # 120,000 × 2 %
    ("0", "whole", 1, "2400.00"),
    (None, "whole", 1, "2400.00"),       # no target: the lowest tier
    # Banded at 120 %: 80/120 of the basis (80,000) at 2 % = 1,600; 20/120 (20,000) at 3 %
    # = 600; 20/120 (20,000) at 5 % = 1,000; total 3,200.
    ("120", "banded", 3, "3200.00"),
    # Banded at 90 %: 80/90 × 120,000 = 106,666.67 at 2 % = 2,133.333…; 10/90 = 13,333.33 at
    # 3 % = 400; exact total 2,533.333… → 2,533.33.
    ("90", "banded", 2, "2533.33"),
    # Banded at 50 %: everything in the first band: 2,400.
    ("50", "banded", 1, "2400.00"),
    (None, "banded", 1, "2400.00"),
])
def test_both_accumulations_by_hand(achievement: str | None, accumulation: str, tier: int,
                                    amount: str) -> None:
    out = svc.apply_tiers(tiers_of(STANDARD), basis=D("120000.00"),
                          achievement=None if achievement is None else D(achievement),
                          accumulation=accumulation)
    assert (out.tier, out.amount, out.capped) == (tier, D(amount), False)


def test_rounding_is_half_up_to_the_fen() -> None:
    # 100.25 × 2 % = 2.005 → 2.01 (half-even would give 2.00); 100.24 × 2 % = 2.0048 → 2.00.
    flat = tiers_of([{"from_pct": "0", "rate": "2"}])
    assert svc.apply_tiers(flat, basis=D("100.25"), achievement=None,
                           accumulation="whole").amount == D("2.01")
    assert svc.apply_tiers(flat, basis=D("100.24"), achievement=None,
                           accumulation="whole").amount == D("2.00")


def test_a_cap_limits_the_amount_after_rounding() -> None:
    out = svc.apply_tiers(tiers_of(STANDARD), basis=D("120000.00"), achievement=D(120),
                          accumulation="whole", cap=D("5000.00"))
    assert (out.uncapped, out.amount, out.capped) == (D("6000.00"), D("5000.00"), True)
    under = svc.apply_tiers(tiers_of(STANDARD), basis=D("120000.00"), achievement=D(120),
                            accumulation="whole", cap=D("6000.00"))
    assert (under.amount, under.capped) == (D("6000.00"), False)


def test_below_the_floor_nothing_is_earned_and_banded_starts_at_the_floor() -> None:
    floored = svc.check_tiers([{"from_pct": "60", "to_pct": "100", "rate": "3"},
                               {"from_pct": "100", "rate": "4"}], floor=D(60))
    below = svc.apply_tiers(floored, basis=D("50000.00"), achievement=D(50),
                            accumulation="whole")
    assert (below.tier, below.amount) == (None, D("0.00"))
    # Banded at 120 % on 120,000: 40/120 (40,000) at 3 % = 1,200; 20/120 (20,000) at 4 %
    # = 800; the 60 % below the floor earns nothing: 2,000.
    banded = svc.apply_tiers(floored, basis=D("120000.00"), achievement=D(120),
                             accumulation="banded")
    assert (banded.tier, banded.amount) == (2, D("2000.00"))


def test_above_a_closed_last_tier_the_last_tier_still_applies() -> None:
    closed = tiers_of([{"from_pct": "0", "to_pct": "100", "rate": "2"},
                       {"from_pct": "100", "to_pct": "150", "rate": "4"}])
    out = svc.apply_tiers(closed, basis=D("200000.00"), achievement=D(200),
                          accumulation="whole")
    assert (out.tier, out.amount) == (2, D("8000.00"))


# --- statements from facts ---------------------------------------------------------------------
def test_collected_whole_by_achievement_with_a_cap(company: Any) -> None:
    # Rep A collected 120,000.00 on a target of 100,000.00 (120 %): tier 3, 5 % = 6,000.00,
    # capped at 5,000.00. Rep A2 collected 79,999.99 on 100,000.00: tier 1, 2 % = 1,599.9998
    # → 1,600.00.
    plan(company, cap="5000")
    put_facts([(company.rep_a, DAY, "collected", 12_000_000),
               (company.rep_a2, DAY, "collected", 7_999_999)])
    target(company, company.rep_a, "100000")
    target(company, company.rep_a2, "100000")
    out = compute(company)
    a, a2 = out[company.rep_a.pk], out[company.rep_a2.pk]
    line = only_line(a)
    assert (line.basis, line.achievement, line.tier, line.rate) == (
        D("120000.00"), D("120.0000"), 3, D("5"))
    assert (line.uncapped, line.amount, line.capped) == (D("6000.00"), D("5000.00"), True)
    assert line.note == "Capped at 5000.00."
    assert (a.basis, a.amount, a.achievement, a.status) == (
        D("120000.00"), D("5000.00"), D("120.0000"), "draft")
    assert only_line(a2).tier == 1 and a2.amount == D("1600.00")
    assert a.figures["plans"][0]["basis_fen"] == 12_000_000
    assert a.figures["plans"][0]["target"] == "100000.0000"
    # The manager of team A is covered too (the plan covers the team), with nothing collected.
    assert out[company.manager_a.pk].amount == D("0.00")
    assert company.rep_b.pk not in out


def test_collected_banded(company: Any) -> None:
    # 120,000.00 on 100,000.00: 80,000 × 2 % + 20,000 × 3 % + 20,000 × 5 % = 3,200.00.
    plan(company, accumulation="banded")
    put_facts([(company.rep_a, DAY, "collected", 12_000_000)])
    target(company, company.rep_a, "100000")
    line = only_line(compute(company, company.rep_a)[company.rep_a.pk])
    assert (line.tier, line.rate, line.amount) == (3, D("5"), D("3200.00"))


def test_no_target_means_the_lowest_tier_and_the_line_says_so(company: Any) -> None:
    # 50,000.00 collected, no target: tier 1, 2 % = 1,000.00.
    plan(company)
    put_facts([(company.rep_a, DAY, "collected", 5_000_000)])
    line = only_line(compute(company, company.rep_a)[company.rep_a.pk])
    assert (line.target, line.achievement, line.tier, line.amount) == (None, None, 1,
                                                                      D("1000.00"))
    assert line.note == "No target on Collected amount for 2026-03: the lowest tier applies."


def test_below_the_floor_the_line_says_nothing_is_earned(company: Any) -> None:
    plan(company, [{"from_pct": "60", "to_pct": "", "rate": "3"}], floor="60")
    put_facts([(company.rep_a, DAY, "collected", 5_000_000)])
    target(company, company.rep_a, "100000")
    line = only_line(compute(company, company.rep_a)[company.rep_a.pk])
    assert (line.tier, line.amount) == (None, D("0.00"))
    assert line.note == "Achievement 50 % is below the plan's floor of 60 %: nothing is earned."


def test_revenue_per_product_line(company: Any) -> None:
    # Revenue 30,000.00 on 硬件 and 10,000.00 on 服务; a 硬件 plan pays on 30,000.00 only.
    # Its KPI (revenue, kept per line) against the 硬件 target of 25,000.00: 120 % → 5 %
    # = 1,500.00. The 服务 plan has no line target but an all-lines one of 50,000.00: 80 %
    # on all lines (40,000) → tier 2, 3 % of 10,000.00 = 300.00.
    plan(company, basis="revenue", line="硬件", name="硬件提成")
    plan(company, basis="revenue", line="服务", name="服务提成")
    put_facts([(company.rep_a, DAY, "revenue", 3_000_000)], line="硬件")
    put_facts([(company.rep_a, DAY, "revenue", 1_000_000)], line="服务")
    put_facts([(company.rep_a, DAY, "revenue", 4_000_000)])
    target(company, company.rep_a, "25000", kpi="revenue", line="硬件")
    target(company, company.rep_a, "50000", kpi="revenue")
    statement = compute(company, company.rep_a)[company.rep_a.pk]
    lines = {x.line: x for x in statement.lines.all()}
    assert (lines["硬件"].basis, lines["硬件"].achievement, lines["硬件"].amount) == (
        D("30000.00"), D("120.0000"), D("1500.00"))
    assert (lines["服务"].basis, lines["服务"].achievement, lines["服务"].tier,
            lines["服务"].amount) == (D("10000.00"), D("80.0000"), 2, D("300.00"))
    assert lines["服务"].note == "No target for the line 服务: achievement on all lines."
    assert statement.amount == D("1800.00") and statement.basis == D("40000.00")
    # No all-lines plan: the statement's achievement is the largest line's.
    assert statement.achievement == D("120.0000")


def test_collected_per_line_uses_the_cash_by_line(company: Any) -> None:
    # collected_by_line 硬件 = 8,000.00 (the all-lines collected is 20,000.00): 2 % = 160.00.
    plan(company, line="硬件")
    put_facts([(company.rep_a, DAY, "collected_by_line", 800_000)], line="硬件")
    put_facts([(company.rep_a, DAY, "collected", 2_000_000)])
    line = only_line(compute(company, company.rep_a)[company.rep_a.pk])
    assert (line.basis, line.amount) == (D("8000.00"), D("160.00"))


def test_tier_by_another_kpi_banded(company: Any) -> None:
    # Revenue 50,000.00 is the basis; collected 125,000.00 on a target of 100,000.00 (125 %)
    # picks the tiers. Banded: 50,000 × 80/125 = 32,000 at 2 % = 640; × 20/125 = 8,000 at 3 %
    # = 240; × 25/125 = 10,000 at 5 % = 500; total 1,380.00.
    plan(company, basis="revenue", kpi="collected", accumulation="banded")
    put_facts([(company.rep_a, DAY, "revenue", 5_000_000),
               (company.rep_a, DAY, "collected", 12_500_000)])
    target(company, company.rep_a, "100000")
    line = only_line(compute(company, company.rep_a)[company.rep_a.pk])
    assert (line.kpi, line.achievement, line.amount) == ("collected", D("125.0000"),
                                                         D("1380.00"))


def test_levels_and_validity_pick_who_is_covered(company: Any) -> None:
    from weiying.org.models import Assignment, Employee

    Assignment.objects.filter(employee__in=[company.rep_a, company.rep_a2]).update(level="P3")
    plan(company, levels="P3, P4")
    plan(company, name="过期方案", valid_from="2025-01-01", valid_to="2026-02-28")
    # Rep A2 left on 2026-02-27: not covered in March (though their HR stretch stays open).
    Employee.objects.filter(pk=company.rep_a2.pk).update(status="left",
                                                         leave_date=dt.date(2026, 2, 27))
    out = compute(company)
    assert set(out) == {company.rep_a.pk}
    assert only_line(out[company.rep_a.pk]).plan.name == "销售提成"
    # Someone hired after March is not covered in March either.
    Employee.objects.filter(pk=company.rep_a.pk).update(hire_date=dt.date(2026, 4, 1))
    CommissionStatement.objects.all().delete()
    assert compute(company) == {}


def test_recomputing_a_draft_replaces_it_and_an_approved_one_never_changes(company: Any
                                                                          ) -> None:
    plan(company)
    put_facts([(company.rep_a, DAY, "collected", 5_000_000)])
    first = compute(company, company.rep_a)[company.rep_a.pk]
    put_facts([(company.rep_a, dt.date(2026, 3, 11), "collected", 5_000_000)])
    again = compute(company, company.rep_a)[company.rep_a.pk]
    assert again.pk == first.pk and again.amount == D("2000.00")
    assert CommissionLine.objects.filter(statement=again).count() == 1

    svc.submit_statement(actor=user_of(company.finance), statement=again)
    svc.approve_statement(actor=user_of(company.manager_a), statement=again)
    put_facts([(company.rep_a, dt.date(2026, 3, 12), "collected", 5_000_000)])
    with pytest.raises(Conflict) as caught:
        compute(company, company.rep_a)
    assert str(caught.value.message) == (
        "The statement of 李销售 for 2026-03 is approved; an approved statement never "
        "changes. Correct it in a later month.")
    with pytest.raises(Conflict):
        svc.recompute_statement(actor=user_of(company.finance), statement=again)
    # A whole-month run leaves it as it is and says so.
    result = svc.compute_month(actor=user_of(company.finance), month="2026-03")
    assert [e.pk for e, _reason in result.skipped] == [company.rep_a.pk]
    kept = CommissionStatement.objects.get(pk=again.pk)
    assert (kept.status, kept.amount) == ("approved", D("2000.00"))


def test_a_month_must_be_a_month(company: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        svc.compute_month(actor=user_of(company.finance), month="2026-Q1")
    assert str(caught.value.message) == "Statements are monthly; give a month such as 2026-03."
    with pytest.raises(PermissionDenied):
        svc.compute_month(actor=user_of(company.manager_a), month="2026-03")
