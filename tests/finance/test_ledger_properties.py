"""Property-based tests of the finance layer: random sequences of contracts, receipts,
deliveries, acceptances, service months, cancellations, refunds and closes, with the books'
invariants checked after every step."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.conftest import user_of
from tests.pipeline.contracts.conftest import make_customer
from weiying.core.errors import DomainError
from weiying.core.money import ZERO
from weiying.finance import close, reports, services
from weiying.finance.models import (
    BALANCE_COLUMNS,
    Entry,
    Movement,
    MovementMonth,
    Obligation,
    Period,
    Voucher,
)
from weiying.finance.recognition import point_due, service_due_through
from weiying.pipeline.services import contracts as svc

D = Decimal
FIRST_DAY = dt.date(2025, 1, 6)
TODAY = dt.date(2026, 11, 30)

amounts = st.decimals(min_value=D("0.01"), max_value=D("30000"), places=2)


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


class Books(RuleBasedStateMachine):
    company: Any = None
    products: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.today = FIRST_DAY
        self.contracts: list[Any] = []
        self.closed: dict[tuple[int, int], dict[str, Decimal]] = {}
        self.seen_vouchers = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize()
    def customers(self) -> None:
        c = self.company
        self.buyers = [(make_customer("甲公司", c.rep_a), c.rep_a),
                       (make_customer("丙公司", c.rep_b), c.rep_b)]

    # --- steps ---------------------------------------------------------------------------
    @rule(days=st.integers(min_value=1, max_value=75))
    def time_passes(self, days: int) -> None:
        self.today = min(self.today + dt.timedelta(days=days), TODAY)

    @rule(days=st.integers(min_value=20, max_value=120))
    def months_pass(self, days: int) -> None:
        self.time_passes(days)
        self.close_months(8)

    @rule(data=st.data(), buyer=st.integers(0, 1), n_lines=st.integers(1, 3),
          service_start=st.integers(0, 20))
    def sign(self, data: Any, buyer: int, n_lines: int, service_start: int) -> None:
        customer, owner = self.buyers[buyer]
        lines = []
        for _i in range(n_lines):
            product = data.draw(st.sampled_from(self.products))
            qty = data.draw(st.integers(1, 5))
            price = data.draw(st.decimals(min_value=D("0.01"), max_value=D("9999.99"),
                                          places=2))
            lines.append({"product": product, "quantity": str(qty), "unit_price": str(price)})
        start = self.today + dt.timedelta(days=service_start)
        months = data.draw(st.integers(0, 4))
        end = start + dt.timedelta(days=30 * months + data.draw(st.integers(0, 20)))
        contract = svc.create_contract(actor=user_of(owner), customer=customer, title="性质",
                                       lines=lines, start_on=start, end_on=end)
        contract = svc.submit_contract(actor=user_of(owner), contract=contract)
        if contract.status == "pending_approval":
            contract = svc.approve_contract(actor=user_of(self.company.admin), contract=contract)
        contract = svc.sign_contract(actor=user_of(self.company.finance), contract=contract,
                                     signed_on=self.today)
        self.contracts.append(contract)

    def _live(self) -> list[Any]:
        for c in self.contracts:
            c.refresh_from_db()
        return [c for c in self.contracts if c.status in ("signed", "in_delivery")]

    @precondition(lambda self: self.contracts)
    @rule(data=st.data(), amount=amounts)
    def receive(self, data: Any, amount: Decimal) -> None:
        live = [c for c in self._live() if c.collected < c.total]
        if not live:
            return
        contract = data.draw(st.sampled_from(live))
        amount = min(amount, contract.total - contract.collected)
        svc.record_receipt(actor=user_of(self.company.finance), contract=contract,
                           amount=amount, received_on=self.today, method="bank")

    @precondition(lambda self: self.contracts)
    @rule(data=st.data())
    def accept_part(self, data: Any) -> None:
        live = self._live()
        if not live:
            return
        contract = data.draw(st.sampled_from(live))
        open_points = [o for o in Obligation.objects.filter(contract=contract, status="open")
                       .exclude(fulfilment="service")]
        if not open_points:
            return
        ob = data.draw(st.sampled_from(open_points))
        qty = data.draw(st.integers(1, int(ob.quantity)))
        services.post_acceptance(contract.pk, key=f"test:{ob.pk}:{Movement.objects.count()}",
                                 accepted_on=self.today,
                                 quantities={ob.contract_line_id: D(qty)})

    @precondition(lambda self: self.contracts)
    @rule(data=st.data())
    def accept_contract(self, data: Any) -> None:
        live = [c for c in self._live() if c.accepted_on is None]
        if not live:
            return
        contract = data.draw(st.sampled_from(live))
        ops = user_of(self.company.operations)
        if contract.status == "signed":
            svc.record_delivery(actor=ops, contract=contract, delivered_on=self.today)
        svc.record_acceptance(actor=ops, contract=contract, accepted_on=self.today)

    @precondition(lambda self: self.contracts)
    @rule(data=st.data())
    def cancel(self, data: Any) -> None:
        live = [c for c in self._live() if c.accepted_on is None]
        if not live:
            return
        contract = data.draw(st.sampled_from(live))
        svc.cancel_contract(actor=user_of(self.company.admin), contract=contract,
                            reason="客户撤单")

    @precondition(lambda self: self.contracts)
    @rule(data=st.data(), amount=amounts)
    def refund(self, data: Any, amount: Decimal) -> None:
        contract = data.draw(st.sampled_from(self.contracts))
        held = sum((max(o.paid_gross - o.recognised_gross, ZERO)
                    for o in Obligation.objects.filter(contract=contract)), ZERO)
        before = Movement.objects.count()
        if held <= 0 or amount > held:
            with pytest.raises(DomainError):
                services.record_refund(actor=user_of(self.company.finance), contract=contract,
                                       amount=amount, refunded_on=self.today, reason="退款")
            assert Movement.objects.count() == before, "a refused refund wrote movements"
            return
        services.record_refund(actor=user_of(self.company.finance), contract=contract,
                               amount=amount, refunded_on=self.today, reason="退款")

    @rule(months=st.integers(1, 8))
    def close_months(self, months: int) -> None:
        for _i in range(months):
            self._close_next()

    def _close_next(self) -> None:
        last = Period.objects.filter(status="closed").order_by("-year", "-month").first()
        year, month = (last.year, last.month) if last else (FIRST_DAY.year, FIRST_DAY.month - 1)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if _month_end(year, month) >= self.today:
            return
        close.close_period(actor=user_of(self.company.finance), year=year, month=month,
                           today=self.today)
        self.closed[(year, month)] = self._period_totals(year, month)

    # --- invariants ----------------------------------------------------------------------
    def _period_totals(self, year: int, month: int) -> dict[str, Decimal]:
        rows = Movement.objects.filter(on__year=year, on__month=month)
        totals = {c: ZERO for c in BALANCE_COLUMNS}
        for m in rows:
            for c in BALANCE_COLUMNS:
                totals[c] += getattr(m, c)
        entries = Entry.objects.filter(on__year=year, on__month=month)
        totals["debit"] = sum((e.debit for e in entries), ZERO)
        totals["vouchers"] = D(Voucher.objects.filter(year=year, month=month).count())
        return totals

    @invariant()
    def every_voucher_balances(self) -> None:
        for voucher in Voucher.objects.filter(pk__gt=self.seen_vouchers).order_by("pk"):
            entries = list(voucher.entries.all())
            assert entries, voucher.number
            assert sum((e.debit for e in entries), ZERO) == sum((e.credit for e in entries),
                                                                ZERO), voucher.number
            self.seen_vouchers = voucher.pk

    @invariant()
    def every_movement_balances_and_obligations_agree(self) -> None:
        sums: dict[int, dict[str, Decimal]] = {}
        for m in Movement.objects.all():
            assert m.balances(), m
            for c in BALANCE_COLUMNS:
                assert isinstance(getattr(m, c), Decimal)
            s = sums.setdefault(m.obligation_id, {c: ZERO for c in BALANCE_COLUMNS})
            for c in BALANCE_COLUMNS:
                s[c] += getattr(m, c)
        last_closed = Period.objects.filter(status="closed").order_by("-year", "-month").first()
        for contract in self.contracts:
            contract.refresh_from_db()
            obs = list(Obligation.objects.filter(contract=contract))
            # The parts of every split add up to the whole.
            assert sum((o.gross for o in obs), ZERO) == contract.total
            paid = ZERO
            for o in obs:
                assert o.net + o.vat == o.gross
                s = sums.get(o.pk, {c: ZERO for c in BALANCE_COLUMNS})
                assert s["revenue"] + s["output_vat"] == o.recognised_gross
                assert s["output_vat"] == o.recognised_vat
                assert s["bank"] == o.paid_gross
                # recognised + deferred (+ released on cancellation) = allocated price
                assert o.recognised_gross + o.deferred_gross + o.released_gross == o.gross
                assert o.deferred_gross >= 0 and o.recognised_gross >= 0
                # No balance goes negative: receivable = R − P, liability = P − R.
                assert s["receivable"] == max(o.recognised_gross - o.paid_gross, ZERO)
                assert (s["contract_liability"] + s["pending_vat"] + s["refund_payable"]
                        == max(o.paid_gross - o.recognised_gross, ZERO))
                # Nothing recognised before acceptance or its period.
                if o.fulfilment == "service":
                    due = (service_due_through(o.gross, o.start_on, o.end_on, last_closed.year,
                                               last_closed.month) if last_closed else ZERO)
                    if o.status != "cancelled":
                        assert o.recognised_gross == due
                    else:
                        assert o.recognised_gross <= due
                else:
                    assert o.recognised_gross == point_due(o.accepted_quantity, o.quantity,
                                                           o.gross)
                paid += o.paid_gross
            assert paid == contract.collected

    @invariant()
    def the_bridge_holds_for_every_slice(self) -> None:
        finance = user_of(self.company.finance)
        slices = [reports.Slice(), reports.Slice(department=self.company.team_a),
                  reports.Slice(department=self.company.north),
                  reports.Slice(owner=self.company.rep_b),
                  *(reports.Slice(product=p) for p in self.products)]
        start = FIRST_DAY - dt.timedelta(days=6) + dt.timedelta(days=40)
        end = self.today + dt.timedelta(days=400)
        for where in slices:
            view = reports.bridge(finance, start, end, where)
            assert view.difference == 0, where
            if where.product is None:
                assert view.timing is not None

    @invariant()
    def the_monthly_rollup_equals_the_movements(self) -> None:
        expected: dict[tuple, dict[str, int]] = {}
        for m in Movement.objects.all():
            key = (m.on.year * 100 + m.on.month, m.department_id, m.owner_id, m.product_id,
                   m.channel)
            row = expected.setdefault(key, {c: 0 for c in BALANCE_COLUMNS})
            for c in BALANCE_COLUMNS:
                row[c] += int(getattr(m, c) * 100)
        actual = {(r.period, r.department_id, r.owner_id, r.product_id, r.channel):
                  {c: getattr(r, c) for c in BALANCE_COLUMNS}
                  for r in MovementMonth.objects.all()}
        assert actual == expected

    @invariant()
    def closed_periods_never_move(self) -> None:
        for (year, month), totals in self.closed.items():
            assert self._period_totals(year, month) == totals, (year, month)


@pytest.fixture
def books_world(company: Any, products: Any) -> type[Books]:
    Books.company = company
    Books.products = [products.box, products.saas, products.setup]
    return Books


def test_the_books_hold_over_random_histories(books_world: type[Books]) -> None:
    state_settings = settings(max_examples=10, stateful_step_count=35, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.function_scoped_fixture])
    books_world.TestCase.settings = state_settings
    books_world.TestCase().runTest()
