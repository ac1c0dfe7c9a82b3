from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.reports.conftest import at, frozen, signed_contract
from weiying.catalog.models import Product
from weiying.core.errors import PermissionDenied
from weiying.core.models import AuditLog
from weiying.customers.services import create_customer
from weiying.finance import services as finance
from weiying.org.models import Role
from weiying.pipeline.services import contracts as svc
from weiying.pipeline.services import leads as lead_services
from weiying.pipeline.services import opportunities as opp_services
from weiying.reports import channels
from weiying.reports.filters import parse
from weiying.wechat.models import Channel

D = Decimal
NOV = {"start": "2026-11-01", "end": "2026-11-30"}


@pytest.fixture(autouse=True)
def _events(events_at_once: None) -> None:
    """The finance layer books from the events: dispatch them at once."""


def _lead(owner: Any, moment: dt.datetime, *, channel: str = "", source: str = "form",
          n: list[int] = [0]) -> Any:  # noqa: B006 - a counter
    n[0] += 1
    with frozen(moment):
        return lead_services.capture_lead(actor=None, name=f"线索{n[0]}",
                                          phone=f"1370000{n[0]:04d}", source=source,
                                          channel=channel, owner=owner)


def _deal(company: Any, customer: Any, owner: Any, boxes: int, signed_on: dt.date,
          box: Product) -> Any:
    return signed_contract(company, owner, customer, signed_on, title="渠道测试",
                           lines=[{"product": box, "quantity": str(boxes),
                                   "unit_price": "1130.00"}])


@pytest.fixture
def world(company: Any) -> SimpleNamespace:
    """November 2026, hand-counted:

    门店活码 (a WeCom channel code): 3 leads (rep_a); customer cA1 (rep_a) opens an opportunity,
      signs 10 boxes (11,300.00) on 8 Nov — their first contract — pays 3,390.00, accepts on
      10 Nov (revenue 10,000.00, cost of sales 6,000.00); spend 900.00 (team A).
    秋季展会 (a campaign typed on the leads): 2 leads (rep_a, rep_b); customer cA2 (rep_a),
      who first bought in October (1 box, paid 1,130.00 on 20 Oct), signs 2 boxes (2,260.00);
      spend 2,000.00 (team A).
    referral (a lead source, no channel text): 1 lead (rep_b); customer cB1 (rep_b) opens an
      opportunity, signs 2 boxes (2,260.00) on 15 Nov, first contract, pays 1,130.00.
    October: 1 门店活码 lead, cA2's first contract, 门店活码 spend 500.00. Nothing a year before.
    """
    fin = user_of(company.finance)
    box = Product.objects.create(code="C-BOX", name="智能柜", list_price=D("1130.00"),
                                 vat_rate=D("0.13"), fulfilment="goods",
                                 standard_cost=D("600.00"))
    Channel.objects.create(name="门店活码", state="store1", department=company.team_a)
    for day in (2, 3, 10):
        _lead(company.rep_a, at(2026, 11, day), channel="门店活码", source="wecom")
    _lead(company.rep_a, at(2026, 10, 15), channel="门店活码", source="wecom")
    _lead(company.rep_b, at(2026, 11, 5), source="referral")
    _lead(company.rep_a, at(2026, 11, 20), channel="秋季展会", source="exhibition")
    _lead(company.rep_b, at(2026, 11, 20, 15), channel="秋季展会", source="exhibition")

    ca1 = create_customer(actor=None, name="门店客户", owner=company.rep_a, source="wecom",
                          channel="门店活码")
    ca2 = create_customer(actor=None, name="展会客户", owner=company.rep_a,
                          source="exhibition", channel="秋季展会")
    cb1 = create_customer(actor=None, name="转介绍客户", owner=company.rep_b, source="referral")
    with frozen(at(2026, 11, 4)):
        opp_services.create_opportunity(actor=None, customer=ca1, name="门店商机",
                                        owner=company.rep_a)
    with frozen(at(2026, 11, 6)):
        opp_services.create_opportunity(actor=None, customer=cb1, name="转介绍商机",
                                        owner=company.rep_b)

    first = _deal(company, ca2, company.rep_a, 1, dt.date(2026, 10, 10), box)
    svc.record_receipt(actor=fin, contract=first, amount="1130.00",
                       received_on=dt.date(2026, 10, 20), method="bank")
    big = _deal(company, ca1, company.rep_a, 10, dt.date(2026, 11, 8), box)
    svc.record_receipt(actor=fin, contract=big, amount="3390.00",
                       received_on=dt.date(2026, 11, 9), method="bank")
    svc.record_delivery(actor=user_of(company.operations), contract=big,
                        delivered_on=dt.date(2026, 11, 9))
    svc.record_acceptance(actor=user_of(company.operations), contract=big,
                          accepted_on=dt.date(2026, 11, 10))
    _deal(company, ca2, company.rep_a, 2, dt.date(2026, 11, 12), box)
    third = _deal(company, cb1, company.rep_b, 2, dt.date(2026, 11, 15), box)
    svc.record_receipt(actor=fin, contract=third, amount="1130.00",
                       received_on=dt.date(2026, 11, 16), method="bank")
    # A cancelled contract is no sale.
    gone = _deal(company, cb1, company.rep_b, 5, dt.date(2026, 11, 17), box)
    svc.cancel_contract(actor=user_of(company.finance), contract=gone, reason="客户取消")

    finance.record_marketing_spend(actor=fin, channel="门店活码", spent_on=dt.date(2026, 11, 1),
                                   amount="900.00", department=company.team_a)
    finance.record_marketing_spend(actor=fin, channel="秋季展会", spent_on=dt.date(2026, 11, 3),
                                   amount="2000.00", department=company.team_a)
    finance.record_marketing_spend(actor=fin, channel="门店活码", spent_on=dt.date(2026, 10, 5),
                                   amount="500.00", department=company.team_a)
    return SimpleNamespace(ca1=ca1, ca2=ca2, cb1=cb1, box=box)


def _report(employee: Any, **params: str) -> channels.ChannelReport:
    user = user_of(employee)
    return channels.channel_report(user, parse(user, {**NOV, **params}))


def _row(report: channels.ChannelReport, key: str) -> channels.ChannelRow:
    return next(r for r in report.rows if r.channel == key)


def test_each_channel_from_leads_to_return(company: Any, world: Any) -> None:
    report = _report(company.admin)

    store = _row(report, "门店活码")
    assert (store.label, store.kind) == ("门店活码", "企业微信渠道活码")
    assert (store.leads, store.opportunities, store.contracts, store.new_customers) == (3, 1, 1, 1)
    assert (store.signed, store.spend, store.cash) == (D("11300.00"), D("900.00"), D("3390.00"))
    assert (store.revenue, store.cost_of_sales, store.margin) == (
        D("10000.00"), D("6000.00"), D("4000.00"))
    assert store.cost_per_lead == D("300.00")
    assert store.acquisition_cost == D("900.00")
    assert store.cash_return == D("3.77")  # 3,390 ÷ 900
    assert store.accrual_return == D("4.44")  # 4,000 ÷ 900

    fair = _row(report, "秋季展会")
    assert (fair.leads, fair.opportunities, fair.contracts, fair.new_customers) == (2, 0, 1, 0)
    assert (fair.signed, fair.spend, fair.cash) == (D("2260.00"), D("2000.00"), D("0.00"))
    assert fair.cost_per_lead == D("1000.00")
    assert fair.acquisition_cost is None
    assert (fair.cash_return, fair.accrual_return) == (D("0.00"), D("0.00"))

    referral = _row(report, "referral")
    assert referral.kind == "线索来源"
    assert (referral.leads, referral.opportunities, referral.contracts,
            referral.new_customers) == (1, 1, 1, 1)
    assert (referral.signed, referral.spend, referral.cash) == (
        D("2260.00"), D("0.00"), D("1130.00"))
    assert referral.cash_return is None

    assert [r.channel for r in report.rows] == ["秋季展会", "门店活码", "referral"]
    total = report.total
    assert (total.leads, total.opportunities, total.contracts, total.new_customers) == (
        6, 2, 3, 2)
    assert (total.signed, total.spend, total.cash, total.margin) == (
        D("15820.00"), D("2900.00"), D("4520.00"), D("4000.00"))
    assert total.cost_per_lead == D("483.33")
    assert total.acquisition_cost == D("1450.00")
    assert (total.cash_return, total.accrual_return) == (D("1.56"), D("1.38"))


def test_headline_against_the_month_before_and_a_year_earlier(company: Any, world: Any) -> None:
    figures = {f.key: f for f in _report(company.admin).headline}

    leads = figures["leads"]
    assert (leads.value, leads.previous, leads.year_ago) == (6, 1, 0)
    assert leads.mom == D("500.0")
    assert leads.yoy is None  # nothing a year earlier: no ratio
    signed = figures["signed"]
    assert (signed.value, signed.previous) == (D("15820.00"), D("1130.00"))
    assert signed.mom == D("1300.0")
    spend = figures["spend"]
    assert (spend.value, spend.previous, spend.mom) == (D("2900.00"), D("500.00"), D("480.0"))
    assert figures["new_customers"].previous == 1
    assert figures["cash"].previous == D("1130.00")
    assert figures["cost_per_lead"].previous == D("500.00")
    assert figures["cash_return"].previous == D("2.26")


def test_by_month_and_per_channel_month(company: Any, world: Any) -> None:
    user = user_of(company.admin)
    report = channels.channel_report(user, parse(user, {"start": "2026-10-01",
                                                        "end": "2026-11-30"}))
    months = dict(report.months)
    october, november = months[dt.date(2026, 10, 1)], months[dt.date(2026, 11, 1)]
    assert (october.leads, october.contracts, october.new_customers) == (1, 1, 1)
    assert (october.spend, october.cash) == (D("500.00"), D("1130.00"))
    assert (november.leads, november.signed, november.spend) == (6, D("15820.00"), D("2900.00"))
    fair = report.by_month["秋季展会"]
    assert fair[dt.date(2026, 10, 1)].new_customers == 1
    assert fair[dt.date(2026, 11, 1)].signed == D("2260.00")
    # over both months 秋季展会 gained cA2 (new in October)
    assert _row(report, "秋季展会").new_customers == 1


def test_a_manager_sees_their_subtree_only(company: Any, world: Any) -> None:
    report = _report(company.manager_a)

    assert {r.channel for r in report.rows} == {"门店活码", "秋季展会"}
    fair = _row(report, "秋季展会")
    assert (fair.leads, fair.contracts, fair.spend) == (1, 1, D("2000.00"))
    assert report.total.leads == 4
    north = _report(company.manager_b)
    assert {r.channel: r.leads for r in north.rows} == {"referral": 1, "秋季展会": 1}
    assert north.total.spend == D("0.00")  # the spend was for team A


def test_a_rep_allowed_reports_sees_only_their_own(company: Any, world: Any) -> None:
    role = Role.objects.create(code="rep_analyst", name="分析销售", data_scope="self",
                               permissions=["reports.view"])
    company.rep_b.role = role
    company.rep_b.save(update_fields=["role"])

    report = _report(company.rep_b)

    assert {r.channel: (r.leads, r.contracts) for r in report.rows} == {
        "referral": (1, 1), "秋季展会": (1, 0)}
    assert report.finance_shown is False  # no finance.view: no spend, cash or revenue
    assert report.total.spend is None and report.total.cash_return is None


def test_a_rep_filter_hides_spend_which_belongs_to_departments(company: Any,
                                                               world: Any) -> None:
    report = _report(company.admin, owner=str(company.rep_a.pk))

    store = _row(report, "门店活码")
    assert (store.leads, store.cash, store.spend, store.cost_per_lead) == (
        3, D("3390.00"), None, None)
    assert report.spend_shown is False


def test_department_filter_takes_the_subtree(company: Any, world: Any) -> None:
    report = _report(company.admin, department=str(company.east.pk))

    assert report.total.leads == 4
    assert report.total.spend == D("2900.00")


def test_plain_reps_are_refused(company: Any, world: Any, login: Any) -> None:
    user = user_of(company.rep_a)
    with pytest.raises(PermissionDenied):
        channels.channel_report(user, parse(user, NOV))
    client = login(company.rep_a)
    for url in ("/reports/channels/", "/reports/channels/?export=csv",
                "/reports/channels/records/?kind=leads"):
        assert client.get(url).status_code == 403, url
    assert api_status(company.rep_a, "/channels") == 403


def test_records_behind_a_figure(company: Any, world: Any) -> None:
    user = user_of(company.manager_a)
    f = parse(user, NOV)

    leads = channels.records(user, f, "leads", "门店活码")
    assert len(leads.items) == 3
    contracts = channels.records(user, f, "new_customers", "门店活码")
    assert [c.customer for c in contracts.items] == [world.ca1]
    fair = channels.records(user, f, "contracts", "秋季展会")
    assert [c.customer for c in fair.items] == [world.ca2]
    assert channels.records(user, f, "new_customers", "秋季展会").items == []
    spend = channels.records(user, f, "spend", "秋季展会")
    assert [s.amount for s in spend.items] == [D("2000.00")]
    cash = channels.records(user, f, "cash", "门店活码")
    assert sum(m.bank for m in cash.items) == D("3390.00")
    north = user_of(company.manager_b)
    assert channels.records(north, parse(north, NOV), "leads", "门店活码").items == []


def test_page_shows_figures_links_and_charts(company: Any, world: Any, login: Any) -> None:
    client = login(company.manager_a)

    page = client.get("/reports/channels/", NOV)

    assert page.status_code == 200
    html = page.content.decode()
    assert "门店活码" in html and "¥11,300.00" in html
    assert "/reports/channels/records/?" in html and "kind=leads" in html
    spec = json.loads(_first_chart(html))
    assert spec["type"] in ("bar", "line", "pie")
    assert {"categories", "series"} <= set(spec)
    partial = client.get("/reports/channels/", NOV, HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode()
    records = client.get("/reports/channels/records/", {**NOV, "kind": "leads",
                                                        "channel": "门店活码"})
    assert records.status_code == 200 and records.content.decode().count("线索") >= 3


def _first_chart(html: str) -> str:
    import re

    found = re.search(r'data-chart="([^"]+)"', html)
    assert found, "no chart container"
    pattern = '<script id="' + re.escape(found.group(1)) + '" type="application/json">(.*?)</script>'
    spec = re.search(pattern, html, re.S)
    assert spec, "the chart container names no spec"
    return spec.group(1)


API_NAMES = {"/channels": "value_channels", "/customers/rfm": "value_rfm",
             "/customers/rfm/customers": "value_rfm_customers",
             "/customers/cohorts": "value_cohorts", "/customers/churn": "value_churn",
             "/customers/upsell": "value_upsell"}


def api_get(employee: Any, path: str, params: dict[str, str]) -> Any:
    """GET on the value router: through its mount when the API includes it (found by URL
    name), else on the router alone with the same user."""
    from django.test import Client
    from django.urls import NoReverseMatch, reverse
    from ninja.testing import TestClient

    from tests.conftest import PASSWORD
    from weiying.reports import api_value

    try:
        url = reverse(f"api:{API_NAMES[path]}")
    except NoReverseMatch:
        return TestClient(api_value.router).get(path, query_params=params,
                                                user=user_of(employee))
    client = Client()
    assert client.login(username=employee.number.lower(), password=PASSWORD)
    return client.get(url, params)


def api_status(employee: Any, path: str) -> int:
    """The status of a GET on the value router (a refusal raised by the bare router is the
    403 the mounted API answers)."""
    try:
        return api_get(employee, path, {}).status_code
    except PermissionDenied:
        return 403


def test_bad_filters_are_refused_with_a_message(company: Any, world: Any, login: Any) -> None:
    client = login(company.manager_a)

    page = client.get("/reports/channels/", {"start": "2026-11-30", "end": "2026-11-01"})
    assert page.status_code == 400
    assert "结束日期早于开始日期" in page.content.decode()
    outside = client.get("/reports/channels/", {"department": str(company.team_b.pk)})
    assert outside.status_code == 404
    kind = client.get("/reports/channels/records/", {"kind": "nonsense"})
    assert kind.status_code == 400


def test_exports_are_audited_and_scoped(company: Any, world: Any, login: Any) -> None:
    client = login(company.manager_a)

    response = client.get("/reports/channels/", {**NOV, "export": "csv", "table": "channels"})

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    body = {r[0]: r for r in rows[1:]}
    assert set(body) == {"门店活码", "秋季展会", "合计"}
    assert body["门店活码"][3] == "3"  # leads
    assert AuditLog.objects.filter(action="export", object_type="reports.channels").exists()
    months = client.get("/reports/channels/", {**NOV, "export": "xlsx", "table": "months"})
    assert months.status_code == 200
    assert months["Content-Disposition"].endswith('.xlsx"')
    records = client.get("/reports/channels/records/", {**NOV, "kind": "leads",
                                                        "export": "csv"})
    assert records.status_code == 200
    text = b"".join(records.streaming_content).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text)))) == 1 + 4
    assert login(company.rep_a).get("/reports/channels/", {"export": "csv"}).status_code == 403


def test_api_answers_the_same_figures(company: Any, world: Any, login: Any) -> None:
    body = api_get(company.manager_a, "/channels", NOV).json()

    store = next(r for r in body["rows"] if r["channel"] == "门店活码")
    assert store["leads"] == 3 and store["signed"] == "11300.00"
    assert store["cash_return"] == "3.77"
    assert {f["key"]: f["previous"] for f in body["headline"]}["leads"] == 1


def test_the_page_reads_the_same_queries_whatever_the_number_of_records(
        company: Any, world: Any, login: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(company.manager_a)
    with CaptureQueriesContext(connection) as before:
        assert client.get("/reports/channels/", NOV).status_code == 200
    for day in (21, 22, 23):
        _lead(company.rep_a, at(2026, 11, day), channel=f"新渠道{day}")
        more = create_customer(actor=None, name=f"新客户{day}", owner=company.rep_a,
                               channel=f"新渠道{day}")
        _deal(company, more, company.rep_a, 1, dt.date(2026, 11, day), world.box)
    with CaptureQueriesContext(connection) as after:
        assert client.get("/reports/channels/", NOV).status_code == 200

    assert len(after) == len(before)
    assert len(before) <= 25, len(before)
