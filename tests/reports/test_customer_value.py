from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.reports.conftest import signed_contract
from tests.reports.test_channels import API_NAMES, api_get, api_status
from weiying.catalog.models import Product
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog
from weiying.customers.services import create_customer
from weiying.org.models import Role
from weiying.pipeline.services import contracts as svc
from weiying.reports import customer_value as cv
from weiying.reports.filters import parse

D = Decimal
YEAR = {"start": "2026-01-01", "end": "2026-11-30"}


def _deal(company: Any, customer: Any, signed_on: dt.date, *lines: tuple[Product, int]) -> Any:
    return signed_contract(company, customer.owner, customer, signed_on, title="价值测试",
                           lines=[{"product": p, "quantity": str(q), "unit_price": "1000.00"}
                                  for p, q in lines])


@pytest.fixture
def world(company: Any) -> SimpleNamespace:
    """Six customers, every line at 1,000.00 a unit (d = dt.date(2026, …) unless noted):

    A (rep_a):  10 Jan 柜, 10 Apr 安装, 9 Jul 保修, 7 Oct 2×柜        n 4, 5,000, last 7 Oct
    B (rep_a):  1 Feb 3×柜, 3 Mar 3×安装                              n 2, 6,000, last 3 Mar
    C (rep_a2): 15 Jun 耗材 (a 90-day life cycle); 1 Jul 5×柜 cancelled n 1, 1,000
    D (rep_b):  1 Dec 2025 柜, 1 Mar 安装, 1 Sep 保修, 20 Nov 4×柜   in 2026: n 3, 6,000
    E (rep_b):  20 Jan, 19 Feb, 21 Mar 柜                             n 3, 3,000, last 21 Mar
    F (rep_a):  1 Aug 4×柜 + 4×保修                                   n 1, 8,000
    """
    p = SimpleNamespace(**{
        key: Product.objects.create(code=f"V-{key}", name=name, list_price=D("1000.00"),
                                    vat_rate=D("0.13"), lifecycle_days=days)
        for key, name, days in (("box", "智能柜", None), ("supply", "耗材", 90),
                                ("install", "安装服务", None), ("warranty", "保修", None))})
    c = SimpleNamespace(**{
        key: create_customer(actor=None, name=name, owner=getattr(company, owner))
        for key, name, owner in (("a", "甲公司", "rep_a"), ("b", "乙公司", "rep_a"),
                                 ("c", "丙公司", "rep_a2"), ("d", "丁公司", "rep_b"),
                                 ("e", "戊公司", "rep_b"), ("f", "己公司", "rep_a"))})
    d = dt.date
    _deal(company, c.a, d(2026, 1, 10), (p.box, 1))
    _deal(company, c.a, d(2026, 4, 10), (p.install, 1))
    _deal(company, c.a, d(2026, 7, 9), (p.warranty, 1))
    _deal(company, c.a, d(2026, 10, 7), (p.box, 2))
    _deal(company, c.b, d(2026, 2, 1), (p.box, 3))
    _deal(company, c.b, d(2026, 3, 3), (p.install, 3))
    _deal(company, c.c, d(2026, 6, 15), (p.supply, 1))
    gone = _deal(company, c.c, d(2026, 7, 1), (p.box, 5))
    svc.cancel_contract(actor=user_of(company.finance), contract=gone, reason="取消")
    _deal(company, c.d, d(2025, 12, 1), (p.box, 1))
    _deal(company, c.d, d(2026, 3, 1), (p.install, 1))
    _deal(company, c.d, d(2026, 9, 1), (p.warranty, 1))
    _deal(company, c.d, d(2026, 11, 20), (p.box, 4))
    for day in (d(2026, 1, 20), d(2026, 2, 19), d(2026, 3, 21)):
        _deal(company, c.e, day, (p.box, 1))
    _deal(company, c.f, d(2026, 8, 1), (p.box, 4), (p.warranty, 4))
    return SimpleNamespace(p=p, c=c)


def _f(employee: Any, **params: str) -> tuple[Any, Any]:
    user = user_of(employee)
    return user, parse(user, {**YEAR, **params})


def test_rfm_breakpoints_scores_and_segments(company: Any, world: Any) -> None:
    user, f = _f(company.admin)
    c = world.c

    cuts = cv.breakpoints(user, f)
    # six customers: the breakpoints sit at positions 2, 3, 4 and 5 of each sorted list
    assert cuts.customers == 6
    assert cuts.recency == [54, 121, 168, 254]  # days: 10, 54, 121, 168, 254, 272
    assert cuts.frequency == [1, 2, 3, 3]  # 1, 1, 2, 3, 3, 4
    assert cuts.monetary == [300000, 500000, 600000, 600000]  # fen

    rows = {r.customer: r for r in cv.rfm_customers(user, f).items}
    got = {name: (rows[getattr(c, name)].recency, rows[getattr(c, name)].frequency,
                  rows[getattr(c, name)].monetary, rows[getattr(c, name)].r,
                  rows[getattr(c, name)].f, rows[getattr(c, name)].m,
                  rows[getattr(c, name)].segment) for name in "abcdef"}
    assert got == {
        "a": (54, 4, D("5000.00"), 5, 5, 2, "hhl"),
        "b": (272, 2, D("6000.00"), 1, 2, 3, "llh"),
        "c": (168, 1, D("1000.00"), 3, 1, 1, "hll"),
        "d": (10, 3, D("6000.00"), 5, 3, 3, "hhh"),
        "e": (254, 3, D("3000.00"), 2, 3, 1, "lhl"),
        "f": (121, 1, D("8000.00"), 4, 1, 5, "hlh"),
    }
    assert rows[c.d].segment_name == "重要价值客户"
    assert rows[c.b].segment_name == "重要挽留客户"
    assert rows[c.f].segment_name == "重要发展客户"
    assert rows[c.a].segment_name == "一般价值客户"
    # largest monetary first, equal amounts by customer
    assert [r.customer for r in cv.rfm_customers(user, f).items] == [c.f, c.b, c.d, c.a, c.e,
                                                                     c.c]


def test_segment_table_and_one_segments_list(company: Any, world: Any) -> None:
    user, f = _f(company.admin)

    report = cv.rfm(user, f)

    table = {s.code: (s.customers, s.amount) for s in report.segments}
    assert table == {"hhh": (1, D("6000.00")), "lhh": (0, D("0.00")),
                     "hlh": (1, D("8000.00")), "llh": (1, D("6000.00")),
                     "hhl": (1, D("5000.00")), "lhl": (1, D("3000.00")),
                     "hll": (1, D("1000.00")), "lll": (0, D("0.00"))}
    assert (report.customers, report.amount) == (6, D("29000.00"))
    assert report.segments[0].share == D("16.7")
    hhh = cv.rfm_customers(user, f, segment="hhh")
    assert [r.customer for r in hhh.items] == [world.c.d]
    assert cv.rfm_customers(user, f, segment="lhh").items == []
    with pytest.raises(ValidationFailed):
        cv.rfm_customers(user, f, segment="xyz")


def test_rfm_pages(company: Any, world: Any) -> None:
    user, f = _f(company.admin)

    first = cv.rfm_customers(user, f, size=4)
    second = cv.rfm_customers(user, f, page=int(first.next_cursor), size=4)

    assert len(first.items) == 4 and first.next_cursor == "2"
    assert [r.customer for r in second.items] == [world.c.e, world.c.c]
    assert second.next_cursor is None


def test_cohort_triangle_and_lifetime_value(company: Any, world: Any) -> None:
    user, f = _f(company.admin)
    c = world.c

    report = cv.cohorts(user, f)

    by_month = {x.month: x for x in report.cohorts}
    # D's first contract was in December 2025: outside the cohorts shown, inside the LTV
    assert list(by_month) == [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 6, 1),
                              dt.date(2026, 8, 1)]
    jan = by_month[dt.date(2026, 1, 1)]  # A and E
    assert (jan.customers, jan.again, jan.again_share) == (2, 2, D("100.0"))
    assert [n for n, _p in jan.cells] == [1, 1, 1, 0, 0, 1, 0, 0, 1, 0]
    assert jan.cells[0] == (1, D("50.0"))
    assert (jan.amount, jan.lifetime_value) == (D("8000.00"), D("4000.00"))
    feb = by_month[dt.date(2026, 2, 1)]  # B, again in March
    assert feb.cells[0] == (1, D("100.0")) and len(feb.cells) == 9
    jun = by_month[dt.date(2026, 6, 1)]  # C; the cancelled contract is no repurchase
    assert (jun.again, [n for n, _p in jun.cells]) == (0, [0, 0, 0, 0, 0])
    assert by_month[dt.date(2026, 8, 1)].lifetime_value == D("8000.00")
    assert report.width == 10
    assert (report.customers, report.amount, report.lifetime_value) == (
        6, D("30000.00"), D("5000.00"))
    jan_k1 = cv.customer_rows(user, f, "cohort", cohort=dt.date(2026, 1, 1), k=1)
    assert [r.customer for r in jan_k1.items] == [c.e]
    jan_all = cv.customer_rows(user, f, "cohort", cohort=dt.date(2026, 1, 1))
    assert [r.customer for r in jan_all.items] == [c.a, c.e]


def test_headline_compared(company: Any, world: Any) -> None:
    user, f = _f(company.admin)

    figures = {x.key: x for x in cv.headline(user, f)}

    assert (figures["buyers"].value, figures["buyers"].previous,
            figures["buyers"].year_ago) == (6, 1, 0)
    assert figures["buyers"].mom == D("500.0")
    assert figures["signed"].value == D("29000.00")
    assert figures["per_buyer"].value == D("4833.33")
    assert (figures["returning"].value, figures["returning_share"].value) == (1, D("16.7"))
    assert figures["lifetime_value"].value == D("5000.00")
    assert figures["lifetime_value"].previous == D("1000.00")  # D alone, to 31 Dec 2025
    returning = cv.customer_rows(user, f, "returning")
    assert [r.customer for r in returning.items] == [world.c.d]


def test_churn_risk_membership_and_order(company: Any, world: Any) -> None:
    user, f = _f(company.admin)
    c = world.c

    rows = cv.churn_risk(user, f).items

    # B: 272 days since, usual 30 (one gap); E: 254 days since, usual 30 (60 ÷ 2).
    # A (54 days, usual 90) and D (10 days, usual 118) are within 1.5 ×; C and F bought once.
    assert [r.customer for r in rows] == [c.b, c.e]
    assert [(r.days_since, r.usual_interval, r.times_usual) for r in rows] == [
        (272, D("30.0"), D("9.07")), (254, D("30.0"), D("8.47"))]
    lifecycle = cv.lifecycle_overdue(user, f).items
    assert [(r.customer, r.product, r.days_overdue) for r in lifecycle] == [
        (c.c, world.p.supply, 78)]


def test_churn_risk_at_an_earlier_date(company: Any, world: Any) -> None:
    user, f = _f(company.admin, end="2026-04-30")

    # On 30 April: B 58 days since (> 45), E 40 (≤ 45), A 20 days since (usual 90)
    assert [r.customer for r in cv.churn_risk(user, f).items] == [world.c.b]


def test_upsell_from_usual_companions(company: Any, world: Any) -> None:
    user, f = _f(company.admin)
    p, c = world.p, world.c

    pairs = {(a.code, b.code): (x.together, x.confidence) for a, b, x in cv.companion_table(f)}
    assert pairs == {
        ("V-box", "V-install"): (3, D("60.0")), ("V-box", "V-warranty"): (3, D("60.0")),
        ("V-install", "V-box"): (3, D("100.0")), ("V-warranty", "V-box"): (3, D("100.0")),
        ("V-install", "V-warranty"): (2, D("66.7")), ("V-warranty", "V-install"): (2, D("66.7")),
    }
    rows = cv.upsell(user, f).items
    assert [(r.customer, r.product, r.because) for r in rows] == [
        (c.b, p.warranty, p.install), (c.f, p.install, p.warranty),
        (c.e, p.install, p.box), (c.e, p.warranty, p.box)]
    assert rows[0].rule.confidence == D("66.7")


def test_a_manager_sees_their_subtree(company: Any, world: Any) -> None:
    c = world.c
    user, f = _f(company.manager_a)

    assert {r.customer for r in cv.rfm_customers(user, f).items} == {c.a, c.b, c.c, c.f}
    assert [r.customer for r in cv.churn_risk(user, f).items] == [c.b]
    assert [r.customer for r in cv.upsell(user, f).items] == [c.b, c.f]
    assert cv.cohorts(user, f).customers == 4
    north, nf = _f(company.manager_b)
    assert [r.customer for r in cv.churn_risk(north, nf).items] == [c.e]
    team = _f(company.admin, department=str(company.team_b.pk))
    assert {r.customer for r in cv.rfm_customers(*team).items} == {c.d, c.e}
    mine = _f(company.admin, owner=str(company.rep_a2.pk))
    assert [r.customer for r in cv.rfm_customers(*mine).items] == [c.c]


def test_a_rep_allowed_reports_sees_only_their_own(company: Any, world: Any) -> None:
    role = Role.objects.create(code="rep_analyst", name="分析销售", data_scope="self",
                               permissions=["reports.view"])
    company.rep_b.role = role
    company.rep_b.save(update_fields=["role"])
    user, f = _f(company.rep_b)

    assert {r.customer for r in cv.rfm_customers(user, f).items} == {world.c.d, world.c.e}
    assert [r.customer for r in cv.churn_risk(user, f).items] == [world.c.e]
    assert cv.cohorts(user, f).customers == 2


def test_plain_reps_are_refused(company: Any, world: Any, login: Any) -> None:
    user, f = _f(company.rep_a)
    for call in (cv.rfm, cv.cohorts, cv.churn_risk, cv.upsell, cv.headline):
        with pytest.raises(PermissionDenied):
            call(user, f)
    client = login(company.rep_a)
    for url in ("/reports/customers/", "/reports/customers/?export=csv&table=segments",
                "/reports/customers/list/?list=churn"):
        assert client.get(url).status_code == 403, url
    for path in API_NAMES:
        assert api_status(company.rep_a, path) == 403, path


def test_page_with_every_section(company: Any, world: Any, login: Any) -> None:
    client = login(company.manager_a)

    page = client.get("/reports/customers/", YEAR)

    assert page.status_code == 200
    html = page.content.decode()
    for text in ("重要挽留客户", "乙公司", "2026-01", "安装服务", "data-chart="):
        assert text in html, text
    assert "丁公司" not in html  # team B's
    assert "/reports/customers/list/?" in html
    partial = client.get("/reports/customers/", YEAR, HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode()
    # in team A's own quintiles (A, B, C, F) B scores R2 F3 M3: important to keep
    listing = client.get("/reports/customers/list/", {**YEAR, "list": "segment",
                                                      "segment": "lhh"})
    assert listing.status_code == 200 and "乙公司" in listing.content.decode()
    cohort = client.get("/reports/customers/list/", {**YEAR, "list": "cohort",
                                                     "cohort": "2026-01", "k": "1"})
    assert cohort.status_code == 200 and "甲公司" not in cohort.content.decode()


def test_bad_input_is_refused(company: Any, world: Any, login: Any) -> None:
    client = login(company.manager_a)

    assert client.get("/reports/customers/", {"end": "2025-01-01",
                                              "start": "2026-01-01"}).status_code == 400
    assert client.get("/reports/customers/list/", {"list": "segment",
                                                   "segment": "zzz"}).status_code == 400
    assert client.get("/reports/customers/list/", {"list": "cohort",
                                                   "cohort": "2026-13"}).status_code == 400
    assert client.get("/reports/customers/list/", {"list": "nope"}).status_code == 400
    assert client.get("/reports/customers/list/", {"list": "churn",
                                                   "page": "0"}).status_code == 400
    assert client.get("/reports/customers/", {"owner": str(company.rep_b.pk)}).status_code == 404


def _csv(response: Any) -> list[list[str]]:
    if response.streaming:
        text = b"".join(response.streaming_content).decode("utf-8-sig")
    else:
        text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_exports_are_audited_and_scoped(company: Any, world: Any, login: Any) -> None:
    client = login(company.manager_a)

    segments = _csv(client.get("/reports/customers/", {**YEAR, "export": "csv",
                                                       "table": "segments"}))
    assert len(segments) == 1 + 8
    cohorts = _csv(client.get("/reports/customers/", {**YEAR, "export": "csv",
                                                      "table": "cohorts"}))
    assert [r[0] for r in cohorts[1:]] == ["2026-01", "2026-02", "2026-06", "2026-08"]
    churn = _csv(client.get("/reports/customers/list/", {**YEAR, "list": "churn",
                                                         "export": "csv"}))
    assert [r[0] for r in churn[1:]] == ["乙公司"]
    rfm = _csv(client.get("/reports/customers/list/", {**YEAR, "list": "segment",
                                                       "export": "csv"}))
    assert {r[0] for r in rfm[1:]} == {"甲公司", "乙公司", "丙公司", "己公司"}
    upsell = client.get("/reports/customers/list/", {**YEAR, "list": "upsell",
                                                     "export": "xlsx"})
    assert upsell.status_code == 200
    assert AuditLog.objects.filter(action="export",
                                   object_type__startswith="reports.customer_value").count() == 5
    assert login(company.rep_a).get("/reports/customers/list/", {
        "list": "churn", "export": "csv"}).status_code == 403


def test_api(company: Any, world: Any) -> None:
    body = api_get(company.manager_a, "/customers/rfm", YEAR).json()
    assert body["customers"] == 4
    churn = api_get(company.manager_a, "/customers/churn", YEAR).json()
    assert [r["customer"] for r in churn["items"]] == ["乙公司"]
    cohorts = api_get(company.admin, "/customers/cohorts", YEAR).json()
    assert cohorts["lifetime_value"] == "5000.00"
    upsell = api_get(company.admin, "/customers/upsell", YEAR).json()
    assert upsell["items"][0]["offer"] == "保修"
    page = api_get(company.admin, "/customers/rfm/customers", {**YEAR, "segment": "hhh"}).json()
    assert [r["customer"] for r in page["items"]] == ["丁公司"]


def test_the_page_reads_the_same_queries_whatever_the_number_of_customers(
        company: Any, world: Any, login: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(company.manager_a)
    with CaptureQueriesContext(connection) as before:
        assert client.get("/reports/customers/", YEAR).status_code == 200
    for n in range(3):
        more = create_customer(actor=None, name=f"新增{n}", owner=company.rep_a)
        _deal(company, more, dt.date(2026, 5, 5), (world.p.box, 1))
        _deal(company, more, dt.date(2026, 6, 5), (world.p.install, 1))
    with CaptureQueriesContext(connection) as after:
        assert client.get("/reports/customers/", YEAR).status_code == 200

    assert len(after) == len(before)
    assert len(before) <= 36, len(before)
