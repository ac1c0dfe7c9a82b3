import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from weiying.pipeline.selectors import contracts as sel
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def book(company, customers, make_contract):
    """Four sold contracts and a draft; figures below are worked out by hand."""
    t = timezone.localdate()
    rep_a, rep_a2 = user_of(company.rep_a), user_of(company.rep_a2)
    finance = user_of(company.finance)
    a1 = make_contract("signed")
    svc.plan_instalments(actor=rep_a, contract=a1, plan=[
        (t - dt.timedelta(days=30), "500.00"), (t - dt.timedelta(days=1), "700.00"),
        (t + dt.timedelta(days=30), "800.00")])
    svc.record_receipt(actor=finance, contract=a1, amount="900.00", received_on=t,
                       method="bank")
    a2 = make_contract("in_delivery")
    svc.plan_instalments(actor=rep_a, contract=a2,
                         plan=[(t - dt.timedelta(days=5), "2000.00")])
    a3 = make_contract("signed", customer=customers.a2)
    svc.plan_instalments(actor=rep_a2, contract=a3,
                         plan=[(t + dt.timedelta(days=10), "2000.00")])
    svc.record_receipt(actor=finance, contract=a3, amount="500.00", received_on=t,
                       method="bank")
    b1 = make_contract("signed", customer=customers.b)
    make_contract()  # a draft never shows
    return {"a1": a1, "a2": a2, "a3": a3, "b1": b1, "t": t}


def rows(qs):
    return {c.number: (c.total, c.collected, c.due, c.overdue, c.next_due_on) for c in qs}


def test_contract_figures_for_a_manager(company, book):
    t = book["t"]
    got = rows(sel.receivable_contracts(user_of(company.manager_a), today=t))
    assert got == {
        # due = 500 + 700; overdue = 1200 − 900; next: the instalment after today
        book["a1"].number: (D("2000.00"), D("900.00"), D("1200.00"), D("300.00"),
                            t + dt.timedelta(days=30)),
        book["a2"].number: (D("2000.00"), D("0.00"), D("2000.00"), D("2000.00"), None),
        # the advance of 500 sits on an instalment not yet due: nothing overdue
        book["a3"].number: (D("2000.00"), D("500.00"), D("0.00"), D("0.00"),
                            t + dt.timedelta(days=10)),
    }


def test_a_rep_sees_only_their_contracts(company, book):
    assert set(rows(sel.receivable_contracts(user_of(company.rep_a), today=book["t"]))) == {
        book["a1"].number, book["a2"].number}
    assert set(rows(sel.receivable_contracts(user_of(company.rep_b), today=book["t"]))) == {
        book["b1"].number}
    assert len(rows(sel.receivable_contracts(user_of(company.finance), today=book["t"]))) == 4


def test_customer_figures_are_the_sums_of_their_contracts(company, customers, book):
    t = book["t"]
    got = sel.receivable_customers(user_of(company.manager_a), today=t)
    assert got == [
        {"customer_id": customers.a.pk, "customer": "上海甲公司", "total": D("4000.00"),
         "collected": D("900.00"), "due": D("3200.00"), "overdue": D("2300.00"),
         "outstanding": D("3100.00"), "next_due_on": t + dt.timedelta(days=30),
         "contracts": 2},
        {"customer_id": customers.a2.pk, "customer": "上海乙公司", "total": D("2000.00"),
         "collected": D("500.00"), "due": D("0.00"), "overdue": D("0.00"),
         "outstanding": D("1500.00"), "next_due_on": t + dt.timedelta(days=10),
         "contracts": 1},
    ]


def test_summary_over_the_scope(company, book):
    qs = sel.receivable_contracts(user_of(company.manager_a), today=book["t"])
    summary = sel.receivable_summary(qs)
    assert {k: summary[k] for k in ("total", "collected", "due", "overdue", "outstanding")} == {
        "total": D("6000.00"), "collected": D("1400.00"), "due": D("3200.00"),
        "overdue": D("2300.00"), "outstanding": D("4600.00")}


def test_filters_overdue_only_and_owner(company, customers, book):
    manager = user_of(company.manager_a)
    t = book["t"]
    assert set(rows(sel.receivable_contracts(manager, today=t, overdue_only=True))) == {
        book["a1"].number, book["a2"].number}
    assert [c["customer_id"] for c in
            sel.receivable_customers(manager, today=t, overdue_only=True)] == [customers.a.pk]
    assert set(rows(sel.receivable_contracts(manager, today=t,
                                             owner=company.rep_a2.pk))) == {book["a3"].number}


def test_figures_move_with_the_day(company, book):
    # a month on, every instalment of a1 is due: 2000 due, 900 collected
    later = book["t"] + dt.timedelta(days=31)
    got = rows(sel.receivable_contracts(user_of(company.rep_a), today=later))
    assert got[book["a1"].number][2:] == (D("2000.00"), D("1100.00"), None)
