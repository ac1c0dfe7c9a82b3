import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.reports.conftest import at, customer, frozen, lead
from weiying.customers.services import create_customer
from weiying.pipeline.services.followups import log_followup
from weiying.reports import activity
from weiying.reports.filters import parse

pytestmark = pytest.mark.django_db

NOW = at(2026, 4, 10, 12)
MARCH = dt.date(2026, 3, 1)


def _touch(person: Any, moment: dt.datetime, **subject: Any) -> None:
    with frozen(NOW):
        log_followup(actor=user_of(person), kind="call", note="聊了聊", at=moment, **subject)


@pytest.fixture
def touches(company: Any) -> SimpleNamespace:
    c = company
    c1, c2, c3 = customer(c.rep_a), customer(c.rep_a2), customer(c.rep_b)
    c4 = customer(c.rep_a)  # never followed up
    create_customer(actor=None, name="公海客户", owner=None)  # in nobody's hands
    for moment in (at(2026, 3, 2, 10), at(2026, 3, 2, 15), at(2026, 3, 31, 23, 30),
                   at(2026, 4, 1, 0, 30)):
        _touch(c.rep_a, moment, customer=c1)
    _touch(c.rep_a2, at(2026, 3, 2, 11), customer=c2)
    _touch(c.rep_b, at(2026, 3, 15), customer=c3)
    return SimpleNamespace(c1=c1, c2=c2, c3=c3, c4=c4)


def _matrix(person: Any, **kw: Any) -> activity.Matrix:
    user = user_of(person)
    return activity.followup_matrix(user, parse(user, {}), MARCH, **kw)


def test_followups_per_rep_per_day_with_totals(company: Any, touches: Any) -> None:
    m = _matrix(company.admin)

    assert len(m.days) == 31 and m.reps == 9
    rows = {r.employee.pk: r for r in m.rows}
    rep_a = rows[company.rep_a.pk]
    assert (rep_a.days[1], rep_a.days[30], rep_a.total) == (2, 1, 3)  # 2nd and 31st
    assert rows[company.rep_a2.pk].total == 1
    assert rows[company.rep_b.pk].days[14] == 1
    assert rows[company.admin.pk].total == 0
    assert (m.day_totals[1], m.day_totals[14], m.day_totals[30], m.total) == (3, 1, 1, 5)


def test_matrix_is_paged_by_rep_and_totals_cover_every_page(company: Any,
                                                            touches: Any) -> None:
    first = _matrix(company.admin, page=1, per_page=2)
    last = _matrix(company.admin, page=5, per_page=2)

    assert (first.pages, len(first.rows), len(last.rows)) == (5, 2, 1)
    assert first.total == last.total == 5
    names = [r.employee.name for p in range(1, 6)
             for r in _matrix(company.admin, page=p, per_page=2).rows]
    assert names == sorted(names) and len(names) == 9


def test_matrix_scope_a_manager_sees_their_subtree(company: Any, touches: Any) -> None:
    m = _matrix(company.manager_a)

    assert {r.employee.pk for r in m.rows} == {company.manager_a.pk, company.rep_a.pk,
                                               company.rep_a2.pk}
    assert m.total == 4
    assert _matrix(company.manager_b).total == 1


@pytest.fixture
def leads(company: Any) -> SimpleNamespace:
    c = company
    l1 = lead(c.rep_a, "ads", at(2026, 3, 3, 9))
    l2 = lead(c.rep_a, "ads", at(2026, 3, 3, 10))
    l3 = lead(c.rep_a2, "referral", at(2026, 3, 4, 9))
    l4 = lead(c.rep_b, "ads", at(2026, 3, 5, 9))
    l5 = lead(c.rep_b, "ads", at(2026, 3, 6, 9))  # never answered
    l6 = lead(c.rep_a, "ads", at(2026, 2, 27, 9))  # assigned before the period
    _touch(c.rep_a, at(2026, 3, 3, 9, 4), lead=l1)  # 4 minutes
    _touch(c.rep_a, at(2026, 3, 3, 10, 5), lead=l2)  # exactly 5 minutes
    _touch(c.rep_a2, at(2026, 3, 4, 11), lead=l3)  # 2 hours
    _touch(c.rep_b, at(2026, 3, 6, 9), lead=l4)  # 24 hours
    return SimpleNamespace(l1=l1, l2=l2, l3=l3, l4=l4, l5=l5, l6=l6)


def _times(person: Any, **params: Any) -> activity.ResponseTimes:
    user = user_of(person)
    return activity.response_times(user, parse(user, {"start": "2026-03-01",
                                                      "end": "2026-03-31", **params}))


def test_response_time_buckets(company: Any, leads: Any) -> None:
    t = _times(company.admin)

    assert (t.assigned, t.answered) == (5, 4)
    assert [(b.key, b.count, b.share) for b in t.buckets] == [
        ("lt5m", 1, Decimal("0.2000")), ("5to30m", 1, Decimal("0.2000")),
        ("30mto2h", 0, Decimal("0.0000")), ("2to24h", 1, Decimal("0.2000")),
        ("gt24h", 1, Decimal("0.2000")), ("never", 1, Decimal("0.2000"))]
    assert t.average_seconds == 23535  # (240 + 300 + 7200 + 86400) / 4


def test_response_time_scope_and_filters(company: Any, leads: Any) -> None:
    assert _times(company.rep_a).assigned == 2
    assert _times(company.manager_a).assigned == 3
    assert _times(company.manager_b).assigned == 2
    assert _times(company.admin, source="referral").assigned == 1
    user = user_of(company.admin)
    f = parse(user, {"start": "2026-03-01", "end": "2026-03-31"})
    assert set(activity.response_leads(user, f, "never").values_list("pk", flat=True)) == {
        leads.l5.pk}


def test_neglected_customers(company: Any, touches: Any) -> None:
    user = user_of(company.admin)
    f = parse(user, {})

    def names(days: int, person: Any = company.admin) -> list[int]:
        u = user_of(person)
        qs = activity.neglected_customers(u, parse(u, {}), days=days, now=NOW)
        return list(qs.order_by(*activity.NEGLECT_SORTS["last"]).values_list("pk", flat=True))

    assert names(30) == [touches.c4.pk, touches.c2.pk]
    assert names(10) == [touches.c4.pk, touches.c2.pk, touches.c3.pk]
    assert names(30, company.manager_a) == [touches.c4.pk, touches.c2.pk]
    assert names(30, company.manager_b) == []
    assert f.owner is None


def test_activity_pages_exports_and_refusals(company: Any, touches: Any, leads: Any,
                                             login: Any) -> None:
    manager = login(company.manager_a)
    with frozen(NOW):
        matrix = manager.get("/reports/activity/", {"month": "2026-03"})
        response = manager.get("/reports/activity/", {"view": "response",
                                                      "start": "2026-03-01"})
        drill = manager.get("/reports/activity/", {"view": "response", "start": "2026-03-01",
                                                   "bucket": "lt5m"})
        neglected = manager.get("/reports/activity/", {"view": "neglected"})
        matrix_csv = manager.get("/reports/activity/", {"month": "2026-03", "export": "csv"})
        neglected_csv = manager.get("/reports/activity/", {"view": "neglected",
                                                           "export": "csv"})
        refused = login(company.rep_a).get("/reports/activity/")
        bad_month = manager.get("/reports/activity/", {"month": "March"})
        bad_days = manager.get("/reports/activity/", {"view": "neglected", "days": "-3"})
        bad_bucket = manager.get("/reports/activity/", {"view": "response", "bucket": "x"})

    assert matrix.status_code == 200 and matrix.context["matrix"].total == 7  # 4 + 3 on leads
    assert [b.count for b in response.context["times"].buckets] == [1, 1, 0, 1, 0, 0]
    assert [lead.pk for lead in drill.context["leads"]] == [leads.l1.pk]
    assert f'/customers/{touches.c4.pk}/' in neglected.content.decode()
    assert neglected.context["total"] == 2
    rows = matrix_csv.content.decode("utf-8-sig").strip().splitlines()
    assert len(rows) == 4 and rows[0].split(",")[1:3] == ["01", "02"]
    assert len(b"".join(neglected_csv.streaming_content).decode("utf-8-sig").strip()
               .splitlines()) == 3
    assert refused.status_code == 403
    assert (bad_month.status_code, bad_days.status_code, bad_bucket.status_code) == (
        400, 400, 400)


def test_activity_api(company: Any, touches: Any, leads: Any, login: Any) -> None:
    manager = login(company.manager_a)
    with frozen(NOW):
        matrix = manager.get("/api/reports/activity/followups", {"month": "2026-03"}).json()
        times = manager.get("/api/reports/activity/response-times",
                            {"start": "2026-03-01", "end": "2026-03-31"}).json()
        neglected = manager.get("/api/reports/activity/neglected").json()
        refused = login(company.rep_a).get("/api/reports/activity/neglected")
        bad = manager.get("/api/reports/activity/followups", {"month": "2026/03"})

    assert (matrix["reps"], matrix["total"]) == (3, 7)
    assert [b["count"] for b in times["buckets"]] == [1, 1, 0, 1, 0, 0]
    assert [c["customer_id"] for c in neglected["items"]] == [touches.c4.pk, touches.c2.pk]
    assert refused.status_code == 403
    assert bad.status_code == 400
