"""List exports (?export=csv|xlsx) on the desktop list pages: the same scoped, filtered and
sorted rows the page lists (every page of them), masked phones, plain money, local times,
an audit row per export, 403 without the export permission, and the toolbar links."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from weiying.core.models import AuditLog
from weiying.core.permissions import BUILTIN_ROLES
from weiying.org.models import Role

pytestmark = pytest.mark.django_db

# Every desktop list with an export. Each seeded record carries its owner's token in the
# column named here: Alpha = rep_a, Gamma = rep_a2 (same team), Beta = rep_b (other branch).
LISTS = {
    "pipeline:lead_list": "联系人姓名",
    "customers:customer_list": "客户名称",
    "pipeline:opportunity_list": "商机",
    "pipeline:contract_list": "标题",
    "pipeline:receivables": "标题",
    "pipeline:ticket_list": "标题",
    "pipeline:followup_list": "备注",
}
TOKENS = {"rep_a": "Alpha", "rep_a2": "Gamma", "rep_b": "Beta"}
PHONES = {"rep_a": "1391111", "rep_a2": "1392222", "rep_b": "1393333"}


def _seed(company: Any, product: Any, who: str, n: int = 0) -> SimpleNamespace:
    """One customer, lead, opportunity, signed contract (600.00 due five days ago, 634.50 in
    30 days, 100.00 collected), follow-up and ticket owned by `who`; `n` > 0 for more."""
    from weiying.customers import services as customers
    from weiying.pipeline.services import contracts, followups, leads, opportunities
    from weiying.pipeline.services import tickets as ticket_services

    owner = getattr(company, who)
    user = user_of(owner)
    token, phone = TOKENS[who] + (str(n) if n else ""), f"{PHONES[who]}{n:02d}"
    today = timezone.localdate()
    now = timezone.now()
    customer = customers.create_customer(actor=None, name=f"{token}客户", owner=owner,
                                         phone=f"{phone}01", tags=["重点"])
    lead = leads.capture_lead(actor=None, name=f"{token}线索", company_name=f"{token}公司",
                              phone=f"{phone}02", owner=owner)
    opportunity = opportunities.create_opportunity(
        actor=None, customer=customer, name=f"{token}商机", amount=Decimal("8800.5"),
        expected_close=today)
    contract = contracts.create_contract(
        actor=None, customer=customer, title=f"{token}合同",
        lines=[{"product": product, "quantity": Decimal(1), "unit_price": Decimal("1234.50")}])
    contracts.submit_contract(actor=None, contract=contract)
    contracts.sign_contract(actor=None, contract=contract, signed_on=today)
    contracts.plan_instalments(actor=None, contract=contract, plan=[
        (today - dt.timedelta(days=5), Decimal("600.00")),
        (today + dt.timedelta(days=30), Decimal("634.50"))])
    contracts.record_receipt(actor=None, contract=contract, amount=Decimal("100.00"),
                             received_on=today, method="bank")
    contract.refresh_from_db()
    followup = followups.log_followup(actor=user, kind="call", note=f"{token}跟进",
                                      customer=customer, at=now - dt.timedelta(hours=2))
    ticket = ticket_services.open_ticket(actor=user, customer=customer, title=f"{token}工单",
                                         contract=contract)
    return SimpleNamespace(customer=customer, lead=lead, opportunity=opportunity,
                           contract=contract, followup=followup, ticket=ticket)


@pytest.fixture
def product(db: Any) -> Any:
    from weiying.catalog.models import Product

    return Product.objects.create(code="EX-1", name="导出测试产品", list_price=Decimal("1000.00"),
                                  vat_rate=Decimal("0.13"))


@pytest.fixture
def data(company: Any, product: Any) -> SimpleNamespace:
    from weiying.pipeline.services import leads

    seeded = SimpleNamespace(**{who: _seed(company, product, who) for who in TOKENS})
    # A team lead nobody owns yet: manager_a sees it, rep_a does not.
    seeded.team_lead = leads.capture_lead(actor=None, name="Delta线索", phone="13944440002",
                                          department=company.team_a)
    return seeded


@pytest.fixture
def exporting_rep(company: Any) -> Any:
    """rep_a with a custom role: a rep's own-records scope plus the export permission (the
    built-in rep role may not export)."""
    rep = next(r for r in BUILTIN_ROLES if r["code"] == "rep")
    role = Role.objects.create(code="rep_export", name="可导出的销售", data_scope="self",
                               permissions=[*rep["permissions"], "export"])
    type(company.rep_a).objects.filter(pk=company.rep_a.pk).update(role=role)
    return company.rep_a


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def export(client: Any, name: str, **params: Any) -> tuple[list[str], list[dict[str, str]]]:
    rows = _csv(client.get(reverse(name), {**params, "export": "csv"}))
    header = rows[0]
    return header, [dict(zip(header, row, strict=True)) for row in rows[1:]]


def column(rows: list[dict[str, str]], name: str) -> list[str]:
    return [row[name] for row in rows]


# --- leads ----------------------------------------------------------------------------------
def test_leads_export_has_exactly_the_reps_own_leads_with_masked_phones(
        data, exporting_rep, login):
    header, rows = export(login(exporting_rep), "pipeline:lead_list")

    assert header == ["联系人姓名", "企业", "电话", "城市", "地区", "来源", "渠道", "意向产品",
                      "状态", "负责人", "团队", "创建时间", "首次响应时间", "最近活动"]
    assert column(rows, "联系人姓名") == ["Alpha线索"]
    row = rows[0]
    assert row["企业"] == "Alpha公司"
    assert row["电话"] == "139****0002"
    assert row["负责人"] == "李销售"
    assert row["团队"] == "上海一组"
    assert row["状态"] == "已分配"
    assert row["来源"] == "网页表单"


def test_leads_export_of_a_manager_is_the_team_and_never_another_branch(data, company, login):
    _header, rows = export(login(company.manager_a), "pipeline:lead_list")

    assert sorted(column(rows, "联系人姓名")) == ["Alpha线索", "Delta线索", "Gamma线索"]
    assert sorted(column(rows, "电话")) == ["139****0002", "139****0002", "139****0002"]


def test_leads_export_applies_search_and_filters_and_keeps_the_sort(data, company, login):
    from weiying.pipeline.models import Lead
    from weiying.pipeline.services import leads

    leads.capture_lead(actor=None, name="Alpha星火", company_name="星火科技",
                       phone="13911119999", owner=company.rep_a)
    leads.capture_lead(actor=None, name="Beta星火", company_name="星火科技",
                       phone="13933339999", owner=company.rep_b)
    base = timezone.make_aware(dt.datetime(2025, 3, 1, 9, 0))
    for offset, name in enumerate(["Gamma线索", "Alpha星火", "Delta线索", "Alpha线索"]):
        Lead.objects.filter(name=name).update(created_at=base + dt.timedelta(days=offset))
    client = login(company.manager_a)

    _h, searched = export(client, "pipeline:lead_list", q="星火")
    _h, newest = export(client, "pipeline:lead_list", sort="-created")
    _h, oldest_name = export(client, "pipeline:lead_list", sort="name", status="assigned",
                             owner=company.rep_a.pk)

    assert column(searched, "联系人姓名") == ["Alpha星火"]
    assert column(newest, "联系人姓名") == ["Alpha线索", "Delta线索", "Alpha星火", "Gamma线索"]
    assert column(oldest_name, "联系人姓名") == ["Alpha星火", "Alpha线索"]


def test_lead_times_are_exported_in_shanghai_time(data, company, login):
    from weiying.pipeline.models import Lead

    Lead.objects.filter(pk=data.rep_a.lead.pk).update(
        created_at=dt.datetime(2025, 1, 1, 20, 30, tzinfo=dt.UTC))

    _h, rows = export(login(company.manager_a), "pipeline:lead_list", q="Alpha")

    assert rows[0]["创建时间"] == "2025-01-02 04:30"


# --- customers ------------------------------------------------------------------------------
def test_customers_export_has_every_page_in_the_page_order(data, company, login):
    from weiying.customers.models import Customer

    start = timezone.now() - dt.timedelta(days=10)
    for n in range(60):
        Customer.objects.create(
            name=f"Gamma批量{n:02d}", name_key=f"gamma批量{n:02d}", owner=company.rep_a2,
            department=company.team_a, last_activity_at=start + dt.timedelta(minutes=n),
            phone=f"139222{n:05d}")
    client = login(company.manager_a)

    header, rows = export(client, "customers:customer_list")
    page = client.get(reverse("customers:customer_list"))

    assert header[:5] == ["客户名称", "类型", "电话", "级别", "跟进状态"]
    names = column(rows, "客户名称")
    assert len(names) == 62 > len(page.context["state"].page.items)
    assert sorted(names[:2]) == ["Alpha客户", "Gamma客户"]  # the newest activity first
    assert names[2:] == [f"Gamma批量{n:02d}" for n in range(59, -1, -1)]
    assert not any("Beta" in name for name in names)
    assert rows[names.index("Gamma批量07")]["电话"] == "139****0007"


def test_customers_export_of_a_rep_is_own_with_masked_phone_and_plain_money(
        data, exporting_rep, login):
    from weiying.customers.models import Customer

    Customer.objects.filter(pk=data.rep_a.customer.pk).update(total_signed=Decimal("1234.5"))

    _h, rows = export(login(exporting_rep), "customers:customer_list")

    assert column(rows, "客户名称") == ["Alpha客户"]
    row = rows[0]
    assert row["电话"] == "139****0001"
    assert row["负责人"] == "李销售"
    assert row["标签"] == "重点"
    assert row["累计签约"] == "1234.50"
    assert row["累计回款"] == "100.00"
    assert row["级别"] == "B：普通客户"


def test_customers_export_applies_the_filters(data, company, login):
    client = login(company.manager_a)

    _h, by_owner = export(client, "customers:customer_list", owner=company.rep_a2.pk)
    _h, searched = export(client, "customers:customer_list", q="Alpha")
    _h, by_level = export(client, "customers:customer_list", level="A")

    assert column(by_owner, "客户名称") == ["Gamma客户"]
    assert column(searched, "客户名称") == ["Alpha客户"]
    assert by_level == []


# --- contracts and collections --------------------------------------------------------------
def test_contracts_export_is_scoped_filtered_with_plain_money_and_local_dates(
        data, company, exporting_rep, login, product):
    from weiying.pipeline.services import contracts

    contracts.create_contract(
        actor=None, customer=data.rep_a.customer, title="Alpha草稿合同",
        lines=[{"product": product, "quantity": Decimal(2), "unit_price": Decimal("10.00")}])
    client = login(exporting_rep)

    header, rows = export(client, "pipeline:contract_list", sort="number")
    _h, drafts = export(client, "pipeline:contract_list", status="draft")
    _h, manager = export(login(company.manager_a), "pipeline:contract_list", status="signed")

    assert header == ["编号", "标题", "客户", "负责人", "状态", "总额（含税）", "不含税总额",
                      "增值税", "已回款", "签约日期", "开始日期", "结束日期", "创建时间"]
    assert sorted(column(rows, "标题")) == ["Alpha合同", "Alpha草稿合同"]
    assert column(rows, "编号") == sorted(column(rows, "编号"))
    signed = next(r for r in rows if r["标题"] == "Alpha合同")
    contract = data.rep_a.contract
    assert signed["编号"] == contract.number
    assert signed["客户"] == "Alpha客户"
    assert signed["状态"] == "已签约"
    assert signed["总额（含税）"] == "1234.50"
    assert signed["不含税总额"] == str(contract.total_net)
    assert signed["已回款"] == "100.00"
    assert signed["签约日期"] == timezone.localdate().isoformat()
    assert signed["创建时间"] == timezone.localtime(contract.created_at).strftime("%Y-%m-%d %H:%M")
    assert column(drafts, "标题") == ["Alpha草稿合同"]
    assert sorted(column(manager, "标题")) == ["Alpha合同", "Gamma合同"]


def test_receivables_export_has_the_collection_figures_per_contract(
        data, company, exporting_rep, login, product):
    from weiying.pipeline.services import contracts

    today = timezone.localdate()
    later = contracts.create_contract(
        actor=None, customer=data.rep_a.customer, title="Alpha未到期合同",
        lines=[{"product": product, "quantity": Decimal(1), "unit_price": Decimal("500.00")}])
    contracts.submit_contract(actor=None, contract=later)
    contracts.sign_contract(actor=None, contract=later, signed_on=today)
    contracts.plan_instalments(actor=None, contract=later,
                               plan=[(today + dt.timedelta(days=10), Decimal("500.00"))])

    header, everyone = export(login(company.finance), "pipeline:receivables")
    _h, overdue = export(login(company.finance), "pipeline:receivables", overdue="1")
    _h, manager = export(login(company.manager_a), "pipeline:receivables", overdue="1")
    _h, own = export(login(exporting_rep), "pipeline:receivables", sort="-total")

    assert header == ["编号", "标题", "客户", "负责人", "状态", "总额（含税）", "已回款",
                      "截至今日应收", "逾期", "未回款", "下次到期"]
    assert sorted(column(everyone, "标题")) == ["Alpha合同", "Alpha未到期合同", "Beta合同",
                                                "Gamma合同"]
    assert sorted(column(overdue, "标题")) == ["Alpha合同", "Beta合同", "Gamma合同"]
    assert sorted(column(manager, "标题")) == ["Alpha合同", "Gamma合同"]
    assert column(own, "标题") == ["Alpha合同", "Alpha未到期合同"]  # largest total first
    row = own[0]
    assert (row["总额（含税）"], row["已回款"], row["截至今日应收"], row["逾期"], row["未回款"]) == (
        "1234.50", "100.00", "600.00", "500.00", "1134.50")
    assert row["下次到期"] == (today + dt.timedelta(days=30)).isoformat()
    assert (own[1]["逾期"], own[1]["未回款"]) == ("0.00", "500.00")


# --- every list -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LISTS))
def test_every_list_exports_only_the_personas_scope(name, data, company, exporting_rep, login):
    key = LISTS[name]
    _h, manager = export(login(company.manager_a), name)
    _h, rep = export(login(exporting_rep), name)

    manager_tokens = {t for t in TOKENS.values() for v in column(manager, key) if t in v}
    rep_tokens = {t for t in TOKENS.values() for v in column(rep, key) if t in v}
    assert manager_tokens == {"Alpha", "Gamma"}
    assert rep_tokens == {"Alpha"}


@pytest.mark.parametrize("name", list(LISTS))
def test_every_export_is_audited(name, data, company, login):
    user = user_of(company.manager_a)

    _h, rows = export(login(company.manager_a), name, q="Alpha")

    entries = list(AuditLog.objects.filter(action="export"))
    assert len(entries) == 1
    entry = entries[0]
    assert entry.actor_id == user.pk
    assert entry.after == {"format": "csv", "filters": {"q": "Alpha", "export": "csv"}}
    assert entry.object_type == {
        "pipeline:lead_list": "pipeline.lead", "customers:customer_list": "customers.customer",
        "pipeline:opportunity_list": "pipeline.opportunity",
        "pipeline:contract_list": "pipeline.contract", "pipeline:receivables": "pipeline.contract",
        "pipeline:ticket_list": "pipeline.ticket", "pipeline:followup_list": "pipeline.followup",
    }[name]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("name", list(LISTS))
def test_export_without_the_permission_is_403_and_not_audited(name, fmt, data, company, login):
    for persona in (company.rep_b, company.operations):
        response = login(persona).get(reverse(name), {"export": fmt})

        assert response.status_code == 403
        assert not getattr(response, "streaming", False)
        body = response.content.decode()
        assert "无权访问" in body
        assert "Beta" not in body
    assert not AuditLog.objects.filter(action="export").exists()


@pytest.mark.parametrize("name", list(LISTS))
def test_xlsx_export_has_the_header_and_the_same_rows_as_csv(name, data, company, login):
    from openpyxl import load_workbook

    client = login(company.manager_a)
    csv_rows = _csv(client.get(reverse(name), {"export": "csv"}))

    response = client.get(reverse(name), {"export": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    rows = [["" if v is None else str(v) for v in row] for row in book.active.iter_rows(
        values_only=True)]
    assert rows[0] == csv_rows[0]
    assert len(rows) == len(csv_rows) > 2
    assert rows == csv_rows
    assert not any("Beta" in cell for row in rows for cell in row)


@pytest.mark.parametrize("name", list(LISTS))
def test_export_queries_do_not_grow_with_the_rows(name, data, company, product, login):
    client = login(company.manager_a)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _csv(client.get(reverse(name), {"export": "csv"}))
        return len(captured)

    before = queries()
    for n in range(1, 4):
        _seed(company, product, "rep_a2", n)
    after = queries()

    assert after == before


# --- toolbar links --------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LISTS))
def test_list_page_links_to_the_export_with_the_current_filters(name, data, company, login):
    page = login(company.manager_a).get(reverse(name), {"q": "Alpha", "sort": "x"})
    body = page.content.decode()

    assert page.status_code == 200
    assert 'href="?q=Alpha&amp;sort=x&amp;export=csv"' in body
    assert 'href="?q=Alpha&amp;sort=x&amp;export=xlsx"' in body
    assert "导出 CSV" in body and "导出 Excel" in body


@pytest.mark.parametrize("name", list(LISTS))
def test_list_page_shows_no_export_link_without_the_permission(name, data, company, login):
    body = login(company.rep_b).get(reverse(name)).content.decode()

    assert "export=" not in body
    assert "导出 CSV" not in body
