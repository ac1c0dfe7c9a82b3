"""The daily facts from the records, by hand: each measure on a small worked example, kept in
step by the events, equal to a rebuild from scratch, and attributed through the HR history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.pipeline.contracts.conftest import make_customer
from weiying.catalog.models import Product
from weiying.org import services as org
from weiying.performance import facts
from weiying.performance.kpis import Evaluator
from weiying.performance.models import DailyFact, DepartmentMonth, SubtreeMonth
from weiying.performance.selectors import (
    Period,
    by_child,
    by_employee,
    by_line,
    compare,
    monthly,
    totals,
)
from weiying.pipeline.models import FollowUp, Lead
from weiying.pipeline.services import contracts as contracts_svc
from weiying.pipeline.services import leads as leads_svc
from weiying.pipeline.services import opportunities as opps_svc
from weiying.pipeline.services.followups import log_followup

pytestmark = pytest.mark.usefixtures("events_at_once")

TZ = timezone.get_current_timezone()


def at(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=TZ) + dt.timedelta(
        minutes=minute)


def fact_rows() -> set[tuple]:
    return set(DailyFact.objects.values_list("day", "employee_id", "department_id",
                                             "department_path", "measure", "line", "value"))


def month_rows() -> set[tuple]:
    return set(DepartmentMonth.objects.values_list("month", "department_id", "department_path",
                                                   "measure", "line", "value"))


def sign(company: Any, customer: Any, lines: list[dict], signed_on: dt.date) -> Any:
    contract = contracts_svc.create_contract(actor=user_of(company.rep_a), customer=customer,
                                             title="绩效测试", lines=lines)
    contract = contracts_svc.submit_contract(actor=user_of(company.rep_a), contract=contract)
    if contract.status == "pending_approval":
        contract = contracts_svc.approve_contract(actor=user_of(company.manager_a),
                                                  contract=contract)
    return contracts_svc.sign_contract(actor=user_of(company.finance), contract=contract,
                                       signed_on=signed_on)


@pytest.fixture
def worked(company: Any) -> Any:
    """Rep A on 2026-03-02: two leads (answered after 30 and 90 minutes), three follow-ups;
    an opportunity won for ¥50,000 and one lost; two contracts (¥11,300 of hardware and
    ¥6,000 of service, then a repeat ¥1,130 for the same customer on 03-20); ¥5,000
    collected on 03-05."""
    day = dt.date(2026, 3, 2)
    kit = Product.objects.create(code="P-KIT", name="硬件", category="硬件",
                                 list_price=Decimal("1130.00"), vat_rate=Decimal("0.13"))
    svc = Product.objects.create(code="P-SVC", name="服务", category="服务",
                                 list_price=Decimal("6000.00"), vat_rate=Decimal("0.06"))
    rep = company.rep_a
    for minutes in (30, 90):
        lead = leads_svc.capture_lead(actor=user_of(company.manager_a), name=f"客户{minutes}",
                                      phone=f"1390000{minutes:04d}", owner=rep)
        Lead.objects.filter(pk=lead.pk).update(assigned_at=at(day, 9))
        log_followup(actor=user_of(rep), kind="call", note="first call", lead=lead,
                     at=at(day, 9, minutes))
    customer = make_customer("绩效甲公司", rep)
    log_followup(actor=user_of(rep), kind="visit", note="visit", customer=customer,
                 at=at(day, 15))
    won = opps_svc.create_opportunity(actor=user_of(rep), customer=customer, name="大单",
                                      amount=Decimal("50000.00"))
    opps_svc.mark_won(actor=user_of(rep), opportunity=won)
    lost = opps_svc.create_opportunity(actor=user_of(rep), customer=customer, name="小单",
                                       amount=Decimal("800.00"))
    opps_svc.mark_lost(actor=user_of(rep), opportunity=lost, reason="price")
    first = sign(company, customer, [
        {"product": kit, "quantity": 10, "unit_price": Decimal("1130.00")},
        {"product": svc, "quantity": 1, "unit_price": Decimal("6000.00")}], day)
    contracts_svc.record_receipt(actor=user_of(company.finance), contract=first,
                                 amount=Decimal("5000.00"), received_on=dt.date(2026, 3, 5),
                                 method="bank")
    sign(company, customer, [{"product": kit, "quantity": 1, "unit_price": Decimal("1130.00")}],
         dt.date(2026, 3, 20))
    return day


def test_each_measure_on_the_worked_example(company: Any, worked: dt.date) -> None:
    march = Period.month(2026, 3)
    raw = totals(user_of(company.admin), period=march, employee=company.rep_a)
    today = timezone.localdate()
    # Opportunities are opened and closed today (the services stamp the clock); the rest is
    # dated by the example.
    assert raw["leads"] == 2 and raw["responded"] == 2
    assert raw["response_seconds"] == 30 * 60 + 90 * 60
    assert raw["signed_contracts"] == 2
    assert raw["signed_amount"] == (11300 + 6000 + 1130) * 100
    assert raw["new_customers"] == 1 and raw["repeat_contracts"] == 1
    assert raw["collected"] == 500000
    follow_ups = FollowUp.objects.filter(owner=company.rep_a).count()
    assert follow_ups == 3
    assert raw.get("followups") == 3
    now = Period.of(today)
    this_month = totals(user_of(company.admin), period=now, employee=company.rep_a)
    assert this_month["opportunities"] == 2
    assert this_month["won"] == 1 and this_month["lost"] == 1
    assert this_month["won_amount"] == 5000000

    kpi = Evaluator(raw)
    assert kpi.value("first_response") == Decimal(3600)  # one hour on average
    assert kpi.value("repurchase_rate") == Decimal("0.5")
    assert kpi.value("signed_amount") == Decimal("18430.00")
    assert Evaluator(this_month).value("win_rate") == Decimal("0.5")
    assert kpi.value("win_rate") is None or march.contains(now)  # nothing closed in March


def test_signed_amount_per_product_line_adds_up_to_the_total(company: Any,
                                                             worked: dt.date) -> None:
    admin = user_of(company.admin)
    march = Period.month(2026, 3)
    hardware = totals(admin, period=march, employee=company.rep_a, line="硬件")
    service = totals(admin, period=march, employee=company.rep_a, line="服务")
    assert hardware["signed_amount"] == (11300 + 1130) * 100
    assert service["signed_amount"] == 6000 * 100
    assert (hardware["signed_amount"] + service["signed_amount"]
            == totals(admin, period=march, employee=company.rep_a)["signed_amount"])


def test_events_keep_the_facts_equal_to_a_rebuild(company: Any, worked: dt.date) -> None:
    kept_facts, kept_months = fact_rows(), month_rows()
    assert kept_facts and kept_months
    facts.rebuild()
    assert fact_rows() == kept_facts
    assert month_rows() == kept_months
    # Recomputing again changes nothing (a replayed event).
    facts.recompute([company.rep_a.pk])
    assert fact_rows() == kept_facts and month_rows() == kept_months


def test_a_transfer_keeps_the_days_before_it_in_the_old_team(company: Any,
                                                            worked: dt.date) -> None:
    admin = user_of(company.admin)
    march = Period.month(2026, 3)
    before = totals(admin, period=march, department=company.team_a)
    org.transfer_employee(actor=admin, employee=company.rep_a, department=company.team_b,
                          on=dt.date(2026, 3, 10))
    team_a = totals(admin, period=march, department=company.team_a)
    team_b = totals(admin, period=march, department=company.team_b)
    # The 03-02 work and the 03-05 receipt stay in team A; the 03-20 repeat goes to team B.
    assert team_a["signed_amount"] == before["signed_amount"] - 113000
    assert team_b["signed_amount"] == 113000
    assert team_a["collected"] == 500000 and "collected" not in team_b
    # The branch above both teams' path (HQ) sees the whole, whichever team.
    assert (totals(admin, period=march, department=company.hq)["signed_amount"]
            == before["signed_amount"])
    kept = fact_rows(), month_rows()
    facts.rebuild()
    assert (fact_rows(), month_rows()) == kept


def test_whole_months_and_days_agree(company: Any, worked: dt.date) -> None:
    admin = user_of(company.admin)
    march = Period.month(2026, 3)
    by_month = totals(admin, period=march, department=company.hq)
    by_days = totals(admin, period=Period(march.start, march.end), department=company.hq)
    assert by_month == by_days
    children = by_child(admin, period=march, department=company.hq)
    assert children[company.east.pk]["signed_amount"] == by_month["signed_amount"]
    trend = monthly(admin, period=Period.quarter(2026, 1), department=company.hq)
    assert trend[dt.date(2026, 3, 1)] == by_month and trend[dt.date(2026, 1, 1)] == {}
    people = by_employee(admin, period=march, department=company.team_a)
    assert set(people) == {company.rep_a.pk}


def test_subtree_months_department_months_and_days_agree(company: Any, worked: dt.date,
                                                         monkeypatch: Any) -> None:
    """The three ways a figure is read give the same sums: the subtree months (a department
    at depth ≤ SUBTREE_DEPTH, or the whole company), the department months (deeper ones) and
    the daily facts (a span of days)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from weiying.performance import selectors

    admin = user_of(company.admin)
    march = Period.month(2026, 3)
    days = Period(march.start, march.end)
    places = [None, company.hq, company.east, company.team_a]

    def read(period: Period) -> list[Any]:
        return [(totals(admin, period=period, department=d),
                 by_line(admin, period=period, department=d)) for d in places]

    with CaptureQueriesContext(connection) as ctx:
        from_subtrees = read(march)
    assert sum("performance_subtreemonth" in q["sql"] for q in ctx.captured_queries) == 8
    assert from_subtrees[0][0]["signed_amount"] > 0 and from_subtrees[0][1]
    assert from_subtrees == read(days)
    monkeypatch.setattr(selectors, "SUBTREE_DEPTH", 0)
    with CaptureQueriesContext(connection) as ctx:
        from_months = read(march)
    # Only the whole company's two reads (its roots are at depth 1 whatever the setting).
    assert sum("performance_subtreemonth" in q["sql"] for q in ctx.captured_queries) == 2
    assert from_months == from_subtrees


def test_the_database_ranks_as_the_figures_do(company: Any, worked: dt.date) -> None:
    from tests.performance.helpers import put_facts
    from weiying.performance.selectors import top_employees

    march = Period.month(2026, 3)
    # Beside rep_a's worked month: one who signed less, one who only collected, one who
    # only lost (ranked on zeros, by id).
    put_facts([(company.rep_a2, dt.date(2026, 3, 4), "signed_amount", 1000),
               (company.rep_b, dt.date(2026, 3, 5), "collected", 500),
               (company.manager_b, dt.date(2026, 3, 6), "lost", 1)])
    measures = ["signed_amount", "collected", "won", "lost"]
    admin = user_of(company.admin)
    figures = by_employee(admin, period=march, department=company.hq, measures=measures)
    expected = sorted(figures, key=lambda pk: (-figures[pk].get("signed_amount", 0),
                                               -figures[pk].get("collected", 0), pk))
    assert len(expected) == 4 and expected[0] == company.rep_a.pk
    ranked = top_employees(admin, period=march, department=company.hq, measures=measures,
                           by=["signed_amount", "collected"], limit=10)
    assert ranked == expected
    assert top_employees(admin, period=march, department=company.hq, measures=measures,
                         by=["signed_amount", "collected"], limit=1) == expected[:1]
    assert by_employee(admin, period=march, department=company.hq, measures=measures,
                       employees=expected[:1]) == {expected[0]: figures[expected[0]]}
    # A rep ranks only themselves, whatever the department asked for is.
    mine = top_employees(user_of(company.rep_a), period=march, measures=measures,
                         by=["signed_amount"])
    assert mine == [company.rep_a.pk]


def test_a_department_move_carries_its_facts(company: Any, worked: dt.date) -> None:
    admin = user_of(company.admin)
    march = Period.month(2026, 3)
    whole = totals(admin, period=march, department=company.team_a)
    org.move_department(actor=admin, department=company.team_a, parent=company.north)
    assert totals(admin, period=march, department=company.north) == whole
    assert totals(admin, period=march, department=company.east) == {}
    subtrees = set(SubtreeMonth.objects.values_list("department_id", "month", "measure", "value"))
    kept = fact_rows(), month_rows()
    facts.rebuild()
    assert (fact_rows(), month_rows()) == kept
    assert set(SubtreeMonth.objects.values_list("department_id", "month", "measure",
                                                "value")) == subtrees


def test_the_subtree_scope_reads_the_facts_own_path_copy(company: Any, worked: dt.date) -> None:
    """A subtree viewer's filter on the facts is a range on their path copy (no join to the
    departments), and keeps exactly the rows the departments' own paths would."""
    from weiying.core import tree
    from weiying.core.scope import scoped

    seen = {}
    for person in (company.director, company.manager_b):
        mine = scoped(DailyFact.objects.all(), user_of(person))
        assert "org_department" not in str(mine.query)
        by_join = DailyFact.objects.filter(tree.subtree_q("department__path",
                                                          person.department.path))
        seen[person.pk] = set(mine.values_list("pk", flat=True))
        assert seen[person.pk] == set(by_join.values_list("pk", flat=True))
    # The worked month is rep_a's, in the director's subtree and not in team_b.
    assert seen[company.director.pk] and not seen[company.manager_b.pk]


def test_the_scope_limits_the_figures(company: Any, worked: dt.date) -> None:
    from weiying.core.errors import NotFound

    march = Period.month(2026, 3)
    rep_b = user_of(company.rep_b)
    assert totals(rep_b, period=march, department=None) == {}
    with pytest.raises(NotFound):
        totals(rep_b, period=march, employee=company.rep_a)
    with pytest.raises(NotFound):
        totals(user_of(company.manager_b), period=march, department=company.team_a)
    mine = totals(user_of(company.rep_a), period=march)
    assert mine["signed_amount"] == 1843000


def test_a_running_month_is_compared_with_the_same_days_before(company: Any,
                                                              worked: dt.date) -> None:
    """On 10 March, March to date is set against 1–10 February and 1–10 March 2025."""
    rep = company.rep_a
    for day, minute in [(dt.date(2026, 2, 5), 0), (dt.date(2026, 2, 20), 1),
                        (dt.date(2025, 3, 10), 2), (dt.date(2025, 3, 11), 3)]:
        lead = leads_svc.capture_lead(actor=user_of(company.manager_a), name=f"旧线索{minute}",
                                      phone=f"1380000{minute:04d}", owner=rep)
        Lead.objects.filter(pk=lead.pk).update(assigned_at=at(day, 12))
    facts.recompute([rep.pk], ["lead"])
    admin = user_of(company.admin)
    running = compare(admin, period=Period.month(2026, 3), today=dt.date(2026, 3, 10),
                      employee=rep)
    assert running["current"]["leads"] == 2
    assert running["previous"]["leads"] == 1 and running["year_ago"]["leads"] == 1
    ended = compare(admin, period=Period.month(2026, 3), today=dt.date(2026, 4, 2),
                    employee=rep)
    assert ended["previous"]["leads"] == 2 and ended["year_ago"]["leads"] == 2


def _schema(table: str) -> set[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        rows = set(cursor.fetchall())
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = %s::regclass", [table])
        return rows | set(cursor.fetchall())


@pytest.mark.django_db
def test_the_bulk_rebuild_puts_back_every_index_and_constraint(company):
    from django.db import IntegrityError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the bulk path (indexes dropped and rebuilt) is PostgreSQL's")
    before = {t: _schema(t) for t in (facts.FACT, facts.MONTH, facts.SUBTREE)}
    log_followup(actor=user_of(company.rep_a), kind="call", note="一次",
                 customer=make_customer("重建公司", company.rep_a))

    steps = facts.rebuild()

    assert {t: _schema(t) for t in (facts.FACT, facts.MONTH, facts.SUBTREE)} == before
    assert steps["indexes"][0] >= 5  # the facts' index and key, the months' two, the subtrees' key
    row = DailyFact.objects.get(employee=company.rep_a, measure="followups")
    with pytest.raises(IntegrityError), transaction.atomic():
        DailyFact.objects.create(day=row.day, month=row.month, employee=row.employee,
                                 department=row.department,
                                 department_path=row.department_path, measure="followups",
                                 value=1)
