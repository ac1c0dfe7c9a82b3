import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.reports.conftest import at, frozen, opportunity
from weiying.reports import forecast
from weiying.reports.filters import parse

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 4, 10)
NOW = at(2026, 4, 10, 12)
D = dt.date


@pytest.fixture
def deals(company: Any) -> SimpleNamespace:
    c = company
    return SimpleNamespace(
        f1=opportunity(c.rep_a, "1000.00", at(2026, 4, 1), ("s4", at(2026, 4, 2)),
                       expected_close=D(2026, 4, 20)),
        f2=opportunity(c.rep_a, "2000.00", at(2026, 4, 1), ("s2", at(2026, 4, 2)),
                       expected_close=D(2026, 5, 15)),
        f3=opportunity(c.rep_b, "400.50", at(2026, 3, 1), expected_close=D(2026, 3, 15)),
        f4=opportunity(c.rep_a2, "300.00", at(2026, 4, 1), ("s3", at(2026, 4, 3))),
        f5=opportunity(c.rep_a, "999.99", at(2026, 4, 2), expected_close=D(2026, 4, 5)),
        f6=opportunity(c.rep_a, "50.00", at(2026, 4, 2), expected_close=D(2026, 12, 1)),
        w1=opportunity(c.rep_a, "5000.00", at(2026, 3, 1), ("won", at(2026, 4, 8)),
                       expected_close=D(2026, 4, 30)),
        # March 2026, as the forecast saw it at 00:00 on 1 March:
        a1=opportunity(c.rep_a, "1000.00", at(2026, 2, 10), ("s4", at(2026, 2, 20)),
                       ("won", at(2026, 3, 18)), expected_close=D(2026, 3, 20)),
        a2=opportunity(c.rep_a, "2000.00", at(2026, 2, 11), ("s2", at(2026, 2, 12)),
                       ("lost", at(2026, 3, 26), "price"), expected_close=D(2026, 3, 25)),
        a3=opportunity(c.rep_a, "600.00", at(2026, 3, 5), ("won", at(2026, 3, 29)),
                       expected_close=D(2026, 3, 30)),
        a4=opportunity(c.rep_a, "700.00", at(2026, 1, 5), ("lost", at(2026, 2, 1), "timing"),
                       expected_close=D(2026, 3, 10)),
        # moved to s4 only after the 1st: counted at its stage then (s1, 10 %)
        a5=opportunity(c.rep_a2, "100.00", at(2026, 2, 25), ("s4", at(2026, 3, 2)),
                       expected_close=D(2026, 3, 31)),
    )


def _forecast(person: Any, **params: Any) -> forecast.Forecast:
    user = user_of(person)
    with frozen(NOW):
        return forecast.build_forecast(user, parse(user, params), today=TODAY)


def test_open_pipeline_by_close_month_weighted_commit_best_case_and_won(
        company: Any, deals: Any) -> None:
    fc = _forecast(company.admin)

    rows = [(m.key, m.count, m.best_case, m.commit, m.weighted, m.won_count, m.won)
            for m in fc.months]
    assert rows == [
        # f3 at s1 (10 %) and a5 at s4 (75 %)
        ("overdue", 2, Decimal("500.50"), Decimal("100.00"), Decimal("115.05"), 0,
         Decimal("0")),
        ("2026-04", 2, Decimal("1999.99"), Decimal("1000.00"), Decimal("850.00"), 1,
         Decimal("5000.00")),
        ("2026-05", 1, Decimal("2000.00"), Decimal("0.00"), Decimal("500.00"), 0, Decimal("0")),
        ("2026-06", 0, Decimal("0"), Decimal("0"), Decimal("0"), 0, Decimal("0")),
        ("2026-07", 0, Decimal("0"), Decimal("0"), Decimal("0"), 0, Decimal("0")),
        ("2026-08", 0, Decimal("0"), Decimal("0"), Decimal("0"), 0, Decimal("0")),
        ("2026-09", 0, Decimal("0"), Decimal("0"), Decimal("0"), 0, Decimal("0")),
        ("later", 1, Decimal("50.00"), Decimal("0.00"), Decimal("5.00"), 0, Decimal("0")),
        ("none", 1, Decimal("300.00"), Decimal("0.00"), Decimal("150.00"), 0, Decimal("0")),
    ]
    assert fc.total("best_case") == Decimal("4850.49")


def test_accuracy_compares_the_forecast_on_the_first_with_what_was_won(
        company: Any, deals: Any) -> None:
    fc = _forecast(company.admin)

    assert [r.month for r in fc.accuracy] == [D(2025, 10, 1), D(2025, 11, 1), D(2025, 12, 1),
                                              D(2026, 1, 1), D(2026, 2, 1), D(2026, 3, 1)]
    march = fc.accuracy[-1]
    # a1 at s4 (75 %), a2 at s2 (25 %), a5 at s1 (10 %); a3 was created later, a4 was closed
    assert (march.count, march.best_case, march.commit, march.weighted) == (
        3, Decimal("3100.00"), Decimal("1000.00"), Decimal("1260.00"))
    assert (march.won, march.won_forecast) == (Decimal("1600.00"), Decimal("1000.00"))
    # 1 - |1600 - 1260| / 1260
    assert march.accuracy == Decimal("0.7302")
    february = fc.accuracy[-2]
    assert (february.count, february.weighted, february.accuracy) == (0, Decimal("0.00"), None)


def test_a_rep_sees_only_theirs_a_manager_their_subtree(company: Any, deals: Any) -> None:
    assert _forecast(company.rep_a).total("count") == 4  # f1, f2, f5, f6
    assert _forecast(company.manager_a).total("count") == 6  # and rep_a2's f4, a5
    assert _forecast(company.manager_b).total("count") == 1
    assert _forecast(company.manager_b).accuracy[-1].count == 0


def test_filters_by_rep_and_department(company: Any, deals: Any) -> None:
    assert _forecast(company.admin, owner=company.rep_a2.pk).total("count") == 2
    assert _forecast(company.admin, department=company.north.pk).total("count") == 1


def test_forecast_page_export_and_scope(company: Any, deals: Any, login: Any) -> None:
    manager = login(company.manager_a)
    with frozen(NOW):
        page = manager.get("/reports/forecast/")
        csv = manager.get("/reports/forecast/", {"table": "accuracy", "export": "csv"})
        refused = login(company.rep_a).get("/reports/forecast/")
        hx = manager.get("/reports/forecast/", HTTP_HX_REQUEST="true")
        bad = manager.get("/reports/forecast/", {"pipeline": "x"})
        outside = manager.get("/reports/forecast/", {"department": company.team_b.pk})

    assert page.status_code == 200
    assert b'data-chart="chart-forecast"' in page.content
    assert "/pipeline/opportunities/?status=open&amp;close_month=2026-04" in page.content.decode()
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert lines[-1].split(",")[:5] == ["2026-03", "3", "3100.00", "1000.00", "1260.00"]
    assert refused.status_code == 403
    assert hx.status_code == 200 and b"<html" not in hx.content
    assert bad.status_code == 400
    assert outside.status_code == 404


def test_api_gives_the_forecast_of_the_callers_scope(company: Any, deals: Any,
                                                     login: Any) -> None:
    with frozen(NOW):
        admin = login(company.admin).get("/api/reports/forecast").json()
        rep = login(company.rep_a).get("/api/reports/forecast")
        manager_b = login(company.manager_b).get("/api/reports/forecast").json()

    april = admin["months"][1]
    assert (april["key"], april["weighted"], april["won"]) == ("2026-04", "850.00", "5000.00")
    assert admin["accuracy"][-1]["accuracy"] == "0.7302"
    assert rep.status_code == 403
    assert [m["count"] for m in manager_b["months"]] == [1, 0, 0, 0, 0, 0, 0, 0, 0]
