"""Property-based tests of the roll-ups: random histories of leads, answers, follow-ups,
signings, receipts, reassignments, transfers (with effective dates), department moves and
rebuilds, with the roll-ups checked after every step against a model kept here in Python.

The claims: the daily facts are exactly what the records say, attributed to the department
each person held on each day; the department months are the sums of the facts; and a
department's figure for any period — whole months or any run of days — equals the sum of its
members' figures for the days they were members, transfers included. A rebuild from scratch
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.conftest import user_of
from tests.pipeline.contracts.conftest import make_customer
from weiying.core import tree
from weiying.org import services as org
from weiying.org.models import Assignment, Department
from weiying.performance import facts
from weiying.performance.models import SUBTREE_DEPTH, DailyFact, DepartmentMonth, SubtreeMonth
from weiying.performance.selectors import Period, totals
from weiying.pipeline.models import Contract, FollowUp, Lead, Receipt

FIRST = dt.date(2026, 1, 1)
DAYS = 120  # to 2026-04-30
TZ = timezone.get_current_timezone()
MEASURED = ("leads", "responded", "response_seconds", "followups", "signed_contracts",
            "signed_amount", "new_customers", "repeat_contracts", "collected")

# A few days, month ends and starts among them, so facts often fall on the day of a transfer
# or at a month's edge, where an off-by-one would show.
days = st.sampled_from([0, 1, 30, 31, 45, 58, 59, 60, 89, 90, 100, 119])
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
numbers = count(1)


def local(day: dt.date, minutes: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=TZ) + dt.timedelta(minutes=minutes)


class Rollups(RuleBasedStateMachine):
    company: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize()
    def world(self) -> None:
        c = self.company
        self.people = [c.rep_a, c.rep_a2, c.rep_b, c.manager_a]
        self.teams = [c.team_a, c.team_b, c.east]
        # The model's HR history: person → [(from day, department id)], sorted.
        self.history = {p.pk: [(dt.date.min, p.department_id)] for p in self.people}
        self.customers = [make_customer(f"客户{i}", c.rep_a) for i in range(3)]
        self.leads: list[Any] = []
        self.contracts: list[Any] = []

    # --- the model ----------------------------------------------------------------------------
    def dept_on(self, person: int, day: dt.date) -> int:
        held = [d for start, d in self.history[person] if start <= day]
        return held[-1]

    def expected_facts(self) -> dict[tuple[int, dt.date, str], int]:
        out: dict[tuple[int, dt.date, str], int] = defaultdict(int)
        for lead in Lead.objects.filter(owner__isnull=False, assigned_at__isnull=False):
            assigned = timezone.localtime(lead.assigned_at, TZ)
            out[(lead.owner_id, assigned.date(), "leads")] += 1
            if lead.first_response_at:
                answered = timezone.localtime(lead.first_response_at, TZ)
                out[(lead.owner_id, answered.date(), "responded")] += 1
                seconds = round((lead.first_response_at - lead.assigned_at).total_seconds())
                out[(lead.owner_id, answered.date(), "response_seconds")] += max(seconds, 0)
        for f in FollowUp.objects.filter(owner__isnull=False):
            out[(f.owner_id, timezone.localtime(f.at, TZ).date(), "followups")] += 1
        signed = sorted(Contract.objects.filter(status="signed"),
                        key=lambda c: (c.signed_on, c.pk))
        seen: set[int] = set()
        for c in signed:
            out[(c.owner_id, c.signed_on, "signed_contracts")] += 1
            out[(c.owner_id, c.signed_on, "signed_amount")] += int(c.total * 100)
            kind = "repeat_contracts" if c.customer_id in seen else "new_customers"
            out[(c.owner_id, c.signed_on, kind)] += 1
            seen.add(c.customer_id)
        for r in Receipt.objects.select_related("contract"):
            out[(r.contract.owner_id, r.received_on, "collected")] += int(r.amount * 100)
        return {k: v for k, v in out.items() if v}

    def figure(self, department: Department, period: Period) -> dict[str, int]:
        """A department's figure by the model: its members' facts on the days they were in
        its subtree."""
        inside = {d.pk for d in Department.objects.filter(
            tree.subtree_q("path", department.path))}
        out: dict[str, int] = defaultdict(int)
        for (person, day, measure), value in self.expected_facts().items():
            if period.start <= day <= period.end and self.dept_on(person, day) in inside:
                out[measure] += value
        return dict(out)

    def recompute(self, *people: Any) -> None:
        facts.recompute([p if isinstance(p, int) else p.pk for p in people])

    # --- steps --------------------------------------------------------------------------------
    @rule(who=st.integers(0, 3), day=days, minute=st.integers(0, 24 * 60 - 1),
          answer=st.one_of(st.none(), st.integers(0, 3 * 24 * 60)))
    def lead_arrives(self, who: int, day: int, minute: int, answer: int | None) -> None:
        person = self.people[who]
        assigned = local(FIRST + dt.timedelta(days=day), minute)
        n = next(numbers)
        lead = Lead.objects.create(
            name=f"线索{n}", phone=f"139{n:08d}", owner=person, department_id=person.department_id,
            status="assigned", assigned_at=assigned, last_activity_at=assigned,
            created_at=assigned,
            first_response_at=None if answer is None else assigned + dt.timedelta(minutes=answer),
        )
        self.leads.append(lead)
        self.recompute(person)

    @precondition(lambda self: self.leads)
    @rule(data=st.data(), who=st.integers(0, 3))
    def lead_reassigned(self, data: Any, who: int) -> None:
        lead = data.draw(st.sampled_from(self.leads))
        before = Lead.objects.get(pk=lead.pk).owner_id
        Lead.objects.filter(pk=lead.pk).update(owner=self.people[who])
        self.recompute(before, self.people[who])

    @rule(who=st.integers(0, 3), day=days, minute=st.integers(0, 24 * 60 - 1))
    def follow_up(self, who: int, day: int, minute: int) -> None:
        person = self.people[who]
        FollowUp.objects.create(kind="call", note="…", owner=person,
                                customer=self.customers[0],
                                at=local(FIRST + dt.timedelta(days=day), minute))
        self.recompute(person)

    @rule(who=st.integers(0, 3), day=days, customer=st.integers(0, 2), total=money)
    def contract_signed(self, who: int, day: int, customer: int, total: Decimal) -> None:
        person = self.people[who]
        n = next(numbers)
        contract = Contract.objects.create(
            number=f"HT-P{n}", title="t", customer=self.customers[customer], owner=person,
            department_id=person.department_id, status="signed", total=total,
            signed_on=FIRST + dt.timedelta(days=day), created_at=timezone.now(),
        )
        self.contracts.append(contract)
        owners = set(Contract.objects.filter(customer=self.customers[customer])
                     .values_list("owner_id", flat=True))
        self.recompute(*owners)

    @precondition(lambda self: self.contracts)
    @rule(data=st.data(), day=days, amount=money)
    def money_received(self, data: Any, day: int, amount: Decimal) -> None:
        contract = data.draw(st.sampled_from(self.contracts))
        Receipt.objects.create(contract=contract, amount=amount, method="bank",
                               received_on=FIRST + dt.timedelta(days=day))
        self.recompute(contract.owner_id)

    @rule(who=st.integers(0, 3), to=st.integers(0, 2), day=days)
    def transferred(self, who: int, to: int, day: int) -> None:
        person = self.people[who]
        target = self.teams[to]
        current = self.history[person.pk][-1]
        on = max(FIRST + dt.timedelta(days=day), current[0] if current[0] > dt.date.min
                 else FIRST)
        if target.pk == current[1]:
            return
        org.transfer_employee(actor=None, employee=person, department=target, on=on,
                              check=False)
        if self.history[person.pk][-1][0] == on:
            self.history[person.pk][-1] = (on, target.pk)
        else:
            self.history[person.pk].append((on, target.pk))
        self.recompute(person)

    @rule()
    def team_b_moves(self) -> None:
        c = self.company
        team_b = Department.objects.get(pk=c.team_b.pk)
        parent = c.east if team_b.parent_id == c.north.pk else c.north
        old = team_b.path
        org.move_department(actor=None, department=team_b, parent=parent, check=False)
        team_b.refresh_from_db()
        facts.move_paths(old, team_b.path)  # what the department.moved subscriber does

    @rule()
    def nightly_rebuild(self) -> None:
        before = self.fact_rows(), self.month_rows()
        facts.rebuild()
        assert (self.fact_rows(), self.month_rows()) == before

    # --- the claims ---------------------------------------------------------------------------
    @staticmethod
    def fact_rows() -> set[tuple]:
        return set(DailyFact.objects.values_list("employee_id", "day", "department_id",
                                                 "department_path", "measure", "line",
                                                 "value"))

    @staticmethod
    def month_rows() -> set[tuple]:
        return set(DepartmentMonth.objects.values_list("department_id", "department_path",
                                                       "month", "measure", "line", "value"))

    @invariant()
    def history_covers_every_day(self) -> None:
        for person, stretches in self.history.items():
            rows = list(Assignment.objects.filter(employee_id=person).order_by("starts_on"))
            assert [r.department_id for r in rows] == [d for _, d in stretches]
            assert rows[-1].ends_on is None
            for a, b in zip(rows, rows[1:], strict=False):
                assert a.ends_on == b.starts_on

    @invariant()
    def facts_are_the_records(self) -> None:
        got = {(e, day, m): v for e, day, _d, _p, m, line, v in self.fact_rows() if line == ""}
        assert got == self.expected_facts()
        paths = dict(Department.objects.values_list("pk", "path"))
        for e, day, d, path, _m, _line, _v in self.fact_rows():
            assert d == self.dept_on(e, day) and path == paths[d]

    @invariant()
    def months_are_the_sums_of_the_facts(self) -> None:
        sums: dict[tuple, int] = defaultdict(int)
        for _e, day, d, path, m, line, v in self.fact_rows():
            sums[(d, path, day.replace(day=1), m, line)] += v
        assert {(*k, v) for k, v in sums.items() if v} == self.month_rows()

    @invariant()
    def subtree_months_are_the_sums_below(self) -> None:
        sums: dict[tuple, int] = defaultdict(int)
        for _d, path, month, m, line, v in self.month_rows():
            for depth, ancestor in enumerate(tree.ancestor_ids(path)[:SUBTREE_DEPTH], 1):
                sums[(ancestor, depth, month, m, line)] += v
        assert {(*k, v) for k, v in sums.items() if v} == set(
            SubtreeMonth.objects.values_list("department_id", "depth", "month", "measure",
                                             "line", "value"))

    @invariant()
    def a_department_is_the_sum_of_its_members(self) -> None:
        admin = user_of(self.company.admin)
        periods = [Period.month(2026, m) for m in (1, 2, 3, 4)] + [
            Period(dt.date(2026, 1, 20), dt.date(2026, 3, 9)), Period(FIRST, dt.date(2026, 4, 30))]
        for department in Department.objects.filter(pk__in=[
                self.company.hq.pk, self.company.east.pk, self.company.team_a.pk,
                self.company.north.pk, self.company.team_b.pk]):
            for period in periods:
                got = totals(admin, period=period, department=department,
                             measures=MEASURED)
                assert got == self.figure(department, period), (department.name, period)


@pytest.fixture
def rollup_world(company: Any) -> type[Rollups]:
    Rollups.company = company
    return Rollups


def test_the_rollups_hold_over_random_histories(rollup_world: type[Rollups]) -> None:
    rollup_world.TestCase.settings = settings(
        max_examples=12, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    rollup_world.TestCase().runTest()
