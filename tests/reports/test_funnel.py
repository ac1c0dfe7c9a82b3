import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.reports.conftest import at, opportunity, stages
from weiying.reports import funnel
from weiying.reports.filters import parse

pytestmark = pytest.mark.django_db

MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


@pytest.fixture
def deals(company: Any, events_at_once: Any) -> SimpleNamespace:
    c = company
    return SimpleNamespace(
        # 1 day in s1, 2 in s2, 1 in s3, then won
        o1=opportunity(c.rep_a, "1000.00", at(2026, 3, 2), ("s2", at(2026, 3, 3)),
                       ("s3", at(2026, 3, 5)), ("won", at(2026, 3, 6)), source="referral"),
        # 2 hours in s1, 2 days in s2, lost on price
        o2=opportunity(c.rep_a, "2000.00", at(2026, 3, 10, 10), ("s2", at(2026, 3, 10, 12)),
                       ("lost", at(2026, 3, 12, 12), "price")),
        o3=opportunity(c.rep_a2, "500.50", at(2026, 3, 15, 8), source="ads"),
        # skips s3: 1 day in s1, 4 in s2, 1 in s4, lost to a competitor
        o4=opportunity(c.rep_b, "3000.00", at(2026, 3, 20, 10), ("s2", at(2026, 3, 21, 10)),
                       ("s4", at(2026, 3, 25, 10)), ("lost", at(2026, 3, 26, 10), "competitor")),
        # the last evening of March in Shanghai (still March), and just after midnight (April)
        o7=opportunity(c.rep_a2, "100.00", at(2026, 3, 31, 23, 30)),
        o8=opportunity(c.rep_a2, "999.00", at(2026, 4, 1, 0, 10)),
        # February (the previous period) and March 2025 (a year earlier)
        o5=opportunity(c.rep_a, "800.00", at(2026, 2, 20), ("won", at(2026, 3, 5))),
        o6=opportunity(c.rep_b, "100.00", at(2025, 3, 10), ("lost", at(2025, 3, 11), "price")),
    )


def _company(company: Any) -> funnel.Funnel:
    return funnel.company_funnel(user_of(company.admin), *MARCH)


def test_company_funnel_counts_reach_conversion_and_drop_off(company: Any, deals: Any) -> None:
    f = _company(company)

    assert (f.created, f.created_amount) == (5, Decimal("6600.50"))
    assert (f.won, f.won_amount) == (1, Decimal("1000.00"))
    assert (f.lost, f.lost_amount) == (2, Decimal("5000.00"))
    assert (f.open, f.open_amount) == (2, Decimal("600.50"))
    assert f.win_rate == Decimal("0.2000")
    rows = [(s.reached, s.reached_amount, s.next_reached, s.conversion, s.dropped,
             s.dropped_lost, s.dropped_open) for s in f.stages]
    assert rows == [
        (5, Decimal("6600.50"), 3, Decimal("0.6000"), 2, 0, 2),
        (3, Decimal("6000.00"), 2, Decimal("0.6667"), 1, 1, 0),
        (2, Decimal("4000.00"), 2, Decimal("1.0000"), 0, 0, 0),
        (2, Decimal("4000.00"), 1, Decimal("0.5000"), 1, 1, 0),
    ]


def test_time_in_stage_is_average_and_median_of_completed_stays(company: Any,
                                                                  deals: Any) -> None:
    f = _company(company)

    assert [(s.stays, s.avg_seconds, s.median_seconds) for s in f.stages] == [
        (3, 60000, 86400),       # 86400, 7200, 86400
        (3, 230400, 172800),     # 172800, 172800, 345600
        (1, 86400, 86400),
        (1, 86400, 86400),
    ]


def test_median_of_an_even_number_of_stays_is_the_mean_of_the_middle_two(
        company: Any, deals: Any) -> None:
    f = funnel.company_funnel(user_of(company.rep_a), *MARCH)

    assert (f.stages[0].stays, f.stages[0].avg_seconds, f.stages[0].median_seconds) == (
        2, 46800, 46800)


def test_loss_reasons_with_counts_and_amounts(company: Any, deals: Any) -> None:
    f = _company(company)

    assert [(r.code, r.count, r.amount) for r in f.reasons] == [
        ("competitor", 1, Decimal("3000.00")), ("price", 1, Decimal("2000.00"))]


def test_a_rep_sees_only_theirs_a_manager_their_subtree(company: Any, deals: Any) -> None:
    def created(person: Any) -> int:
        return funnel.company_funnel(user_of(person), *MARCH).created

    assert created(company.rep_a) == 2
    assert created(company.rep_b) == 1
    assert created(company.manager_a) == 4
    assert created(company.director) == 4
    assert created(company.manager_b) == 1


def test_department_owner_and_source_filters(company: Any, deals: Any) -> None:
    admin = user_of(company.admin)
    base = {"start": "2026-03-01", "end": "2026-03-31"}

    def created(**extra: Any) -> int:
        return funnel.build_funnel(admin, parse(admin, {**base, **extra})).created

    assert created(department=company.east.pk) == 4
    assert created(department=company.team_b.pk) == 1
    assert created(owner=company.rep_a2.pk) == 2
    assert created(source="referral") == 1
    assert created(source="none") == 3


def test_breakdowns_by_team_source_and_month(company: Any, deals: Any) -> None:
    admin = user_of(company.admin)
    b = funnel.breakdowns(admin, parse(admin, {"start": "2026-03-01", "end": "2026-03-31"}))

    assert [(r.label, r.created, r.reached, r.won, r.lost) for r in b.teams] == [
        ("华东分公司", 4, [4, 2, 1, 1], 1, 1), ("华北分公司", 1, [1, 1, 1, 1], 0, 1)]
    assert [(r.key, r.created, r.won) for r in b.sources] == [
        ("none", 3, 0), ("ads", 1, 0), ("referral", 1, 1)]
    assert [(r.key, r.created) for r in b.months] == [("2026-03", 5)]


def test_comparison_with_previous_period_and_a_year_earlier(company: Any, deals: Any) -> None:
    admin = user_of(company.admin)
    current = funnel.build_funnel(admin, parse(admin, {"start": "2026-03-01",
                                                       "end": "2026-03-31"}))
    cmp = funnel.compare(admin, current)

    assert (cmp.previous.filters.start, cmp.previous.filters.end) == (
        dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert (cmp.previous.created, cmp.previous.won) == (1, 1)
    assert (cmp.year_ago.created, cmp.year_ago.lost) == (1, 1)
    created = cmp.rows[0]
    assert (created.current, created.previous, created.year_ago, created.mom, created.yoy) == (
        5, 1, 1, 4, 4)
    assert created.mom_pct == Decimal("4.0000")
    win = cmp.rows[5]
    assert (win.current, win.previous, win.year_ago, win.mom, win.yoy) == (
        Decimal("0.2000"), Decimal("1.0000"), Decimal("0.0000"), Decimal("-0.8000"),
        Decimal("0.2000"))


def test_drill_down_lists_exactly_the_records_behind_each_number(company: Any,
                                                                 deals: Any) -> None:
    admin = user_of(company.admin)
    f = parse(admin, {"start": "2026-03-01", "end": "2026-03-31"})
    s = stages()
    d = deals

    def ids(**params: Any) -> set[int]:
        return set(funnel.records(admin, f, params).values_list("pk", flat=True))

    assert ids() == {d.o1.pk, d.o2.pk, d.o3.pk, d.o4.pk, d.o7.pk}
    assert ids(stage=str(s["s2"].pk)) == {d.o1.pk, d.o2.pk, d.o4.pk}
    assert ids(stage=str(s["s3"].pk)) == {d.o1.pk, d.o4.pk}
    assert ids(dropped=str(s["s1"].pk)) == {d.o3.pk, d.o7.pk}
    assert ids(dropped=str(s["s4"].pk)) == {d.o4.pk}
    assert ids(outcome="won") == {d.o1.pk}
    assert ids(reason="price") == {d.o2.pk}
    assert ids(team=str(company.north.pk)) == {d.o4.pk}
    assert ids(src="none") == {d.o2.pk, d.o4.pk, d.o7.pk}
    assert ids(month="2026-03", src="ads") == {d.o3.pk}
    # a manager's drill-down stays in the subtree
    manager = user_of(company.manager_a)
    assert set(funnel.records(manager, parse(manager, {"start": "2026-03-01",
                                                       "end": "2026-03-31"}),
                              {"dropped": str(s["s4"].pk)}).values_list("pk", flat=True)) == set()


def test_the_roll_up_kept_by_events_and_the_rebuilt_one_agree_with_the_tables(
        company: Any, deals: Any) -> None:
    from weiying.reports import rollup
    from weiying.reports.models_funnel import FunnelLevel, FunnelStay, FunnelStayDay

    admin = user_of(company.admin)
    for start, end in [MARCH, (dt.date(2026, 2, 10), dt.date(2026, 3, 20)),
                       (dt.date(2026, 3, 3), dt.date(2026, 3, 20)),
                       (dt.date(2025, 1, 1), dt.date(2026, 12, 31))]:
        f = parse(admin, {"start": start.isoformat(), "end": end.isoformat()})
        kept = funnel.build_funnel(admin, f, use_rollup=True).figures()
        assert kept == funnel.build_funnel(admin, f, use_rollup=False).figures()
    levels = set(FunnelLevel.objects.filter(count__gt=0).values_list(
        "day", "furthest", "status", "lost_reason", "count", "amount_fen"))
    stays = set(FunnelStay.objects.values_list("month", "stage_id", "hours", "count",
                                               "seconds"))
    stay_days = set(FunnelStayDay.objects.values_list("day", "stage_id", "hours", "count",
                                                      "seconds"))

    rollup.rebuild()

    assert set(FunnelLevel.objects.values_list(
        "day", "furthest", "status", "lost_reason", "count", "amount_fen")) == levels
    assert set(FunnelStay.objects.values_list("month", "stage_id", "hours", "count",
                                              "seconds")) == stays
    assert set(FunnelStayDay.objects.values_list("day", "stage_id", "hours", "count",
                                                 "seconds")) == stay_days
    assert funnel.uses_rollup(admin, parse(admin, {}))
    assert not funnel.uses_rollup(admin, parse(admin, {"source": "ads"}))
    assert not funnel.uses_rollup(user_of(company.director), parse(admin, {}))


def test_a_replayed_event_changes_nothing(company: Any, deals: Any) -> None:
    from weiying.core import events
    from weiying.core.models import DomainEvent, EventHandling
    from weiying.reports.models_funnel import FunnelLevel, FunnelStay

    before = (list(FunnelLevel.objects.order_by("pk").values_list("count", "amount_fen")),
              list(FunnelStay.objects.order_by("pk").values_list("count", "seconds")))
    EventHandling.objects.filter(subscriber__startswith="weiying.reports.rollup").delete()

    events.replay(DomainEvent.objects.filter(name__startswith="opportunity."))

    after = (list(FunnelLevel.objects.order_by("pk").values_list("count", "amount_fen")),
             list(FunnelStay.objects.order_by("pk").values_list("count", "seconds")))
    assert after == before


def test_hand_sql_gives_the_same_figures(company: Any, deals: Any) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the hand-written SQL is PostgreSQL's")
    from bench.funnel_sql import hand_funnel, hand_funnel_raw

    ours = funnel.company_funnel(user_of(company.admin), *MARCH).figures()
    pipeline_id = stages()["s1"].pipeline_id
    with connection.cursor() as cursor:
        assert hand_funnel(cursor, *MARCH, pipeline_id) == ours
        assert hand_funnel_raw(cursor, *MARCH, pipeline_id) == ours


def test_every_number_agrees_with_its_drill_down(company: Any, deals: Any) -> None:
    admin = user_of(company.admin)
    f = parse(admin, {"start": "2026-03-01", "end": "2026-03-31"})
    figures = funnel.build_funnel(admin, f)
    for row in figures.stages:
        assert funnel.records(admin, f, {"stage": str(row.stage_id)}).count() == row.reached
        assert funnel.records(admin, f, {"dropped": str(row.stage_id)}).count() == row.dropped


def test_funnel_page_shows_figures_linked_to_their_records(company: Any, deals: Any,
                                                           login: Any) -> None:
    client = login(company.manager_a)

    page = client.get("/reports/funnel/", {"start": "2026-03-01", "end": "2026-03-31"})

    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-chart="chart-funnel"' in body and 'id="chart-funnel"' in body
    s2 = stages()["s2"]
    link = (f"/reports/funnel/records/?start=2026-03-01&amp;end=2026-03-31&amp;pipeline="
            f"{s2.pipeline_id}&amp;stage={s2.pk}")
    assert f'<a href="{link}">2</a>' in body  # o1 and o2 reached s2 in team A


def test_funnel_page_answers_htmx_with_the_results_only(company: Any, deals: Any,
                                                        login: Any) -> None:
    page = login(company.admin).get("/reports/funnel/", {"start": "2026-03-01"},
                                    HTTP_HX_REQUEST="true")

    assert page.status_code == 200
    assert b"<html" not in page.content and b"chart-funnel" in page.content


def test_a_rep_is_refused_the_funnel_pages(company: Any, deals: Any, login: Any) -> None:
    client = login(company.rep_a)

    assert client.get("/reports/funnel/").status_code == 403
    assert client.get("/reports/funnel/records/").status_code == 403


def test_bad_input_is_refused_with_the_reason(company: Any, login: Any) -> None:
    client = login(company.admin)

    page = client.get("/reports/funnel/", {"start": "2026-03-31", "end": "2026-03-01"})
    assert page.status_code == 400
    assert "结束日期早于开始日期" in page.content.decode()
    assert client.get("/reports/funnel/", {"start": "yesterday"}).status_code == 400
    assert client.get("/reports/funnel/records/", {"month": "13-2026"}).status_code == 400


def test_a_department_outside_the_scope_is_not_acknowledged(company: Any, login: Any) -> None:
    client = login(company.manager_a)

    assert client.get("/reports/funnel/", {"department": company.team_b.pk}).status_code == 404
    assert client.get("/reports/funnel/records/",
                      {"owner": company.rep_b.pk}).status_code == 404


def test_drill_down_page_lists_the_records_in_scope(company: Any, deals: Any,
                                                    login: Any) -> None:
    s4 = stages()["s4"]
    params = {"start": "2026-03-01", "end": "2026-03-31", "stage": s4.pk}

    admin_page = login(company.admin).get("/reports/funnel/records/", params)
    manager_page = login(company.manager_a).get("/reports/funnel/records/", params)

    assert admin_page.context["total"] == 2
    assert {o.pk for o in admin_page.context["rows"]} == {deals.o1.pk, deals.o4.pk}
    assert {o.pk for o in manager_page.context["rows"]} == {deals.o1.pk}


def test_every_table_exports_and_the_export_is_audited(company: Any, deals: Any,
                                                      login: Any) -> None:
    from weiying.core.models import AuditLog

    client = login(company.manager_a)
    for table in ("stages", "reasons", "comparison", "teams", "sources", "months"):
        response = client.get("/reports/funnel/", {"start": "2026-03-01", "end": "2026-03-31",
                                                   "table": table, "export": "csv"})
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
    text = client.get("/reports/funnel/", {"start": "2026-03-01", "end": "2026-03-31",
                                           "table": "stages", "export": "csv"}
                      ).content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[1].split(",")[:4] == ["初步接洽", "4", "3600.50", "2"]
    xlsx = client.get("/reports/funnel/", {"table": "teams", "export": "xlsx"})
    assert xlsx.status_code == 200
    assert AuditLog.objects.filter(action="export",
                                     object_type="reports.funnel.stages").count() == 2
    records = client.get("/reports/funnel/records/", {"start": "2026-03-01",
                                                      "end": "2026-03-31", "export": "csv"})
    assert len(b"".join(records.streaming_content).decode("utf-8-sig").strip()
               .splitlines()) == 5  # header + o1, o2, o3, o7


def test_export_needs_the_export_permission(company: Any, deals: Any, login: Any) -> None:
    from weiying.org.models import Role

    role = Role.objects.get(code="manager")
    role.permissions = [p for p in role.permissions if p != "export"]
    role.save()

    response = login(company.manager_a).get("/reports/funnel/", {"export": "csv"})

    assert response.status_code == 403


def test_api_gives_the_funnel_of_the_callers_scope(company: Any, deals: Any,
                                                   login: Any) -> None:
    params = {"start": "2026-03-01", "end": "2026-03-31", "breakdowns": "true"}

    admin = login(company.admin).get("/api/reports/funnel", params).json()
    manager = login(company.manager_a).get("/api/reports/funnel", params).json()

    assert admin["figures"]["created"] == 5
    assert admin["figures"]["stages"][1]["conversion"] == "0.6667"
    assert admin["figures"]["reasons"][0] == {"code": "competitor", "count": 1,
                                               "amount": "3000.00"}
    assert (admin["previous"]["created"], admin["year_ago"]["lost"]) == (1, 1)
    assert [m["key"] for m in admin["months"]] == ["2026-03"]
    assert manager["figures"]["created"] == 4
    assert manager["figures"]["created_amount"] == "3600.50"


def test_api_refuses_a_rep_a_foreign_department_and_bad_dates(company: Any,
                                                              login: Any) -> None:
    assert login(company.rep_a).get("/api/reports/funnel").status_code == 403
    manager = login(company.manager_a)
    outside = manager.get("/api/reports/funnel", {"department": company.team_b.pk})
    assert outside.status_code == 404
    backwards = manager.get("/api/reports/funnel", {"start": "2026-03-31",
                                                    "end": "2026-03-01"})
    assert backwards.status_code == 400
    assert backwards.json()["code"] == "invalid"
