"""Shared fixtures: a small company with named personas.

    总部 HQ ─┬─ 华东分公司 East branch ── 上海一组 Team A   (director_east; manager_a → rep_a, rep_a2)
             ├─ 华北分公司 North branch ── 北京一组 Team B  (rep_b)
             └─ 财务部 Finance, 运营部 Operations, admin
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client

from weiying.org import services as org
from weiying.org.models import Role

PASSWORD = "weiying-test-pass"


def _person(number: str, name: str, dept: Any, role: str, leader: Any = None) -> Any:
    employee = org.create_employee(
        actor=None, number=number, name=name, department=dept, leader=leader,
        role=Role.objects.get(code=role), hire_date=dt.date(2024, 1, 1), check=False,
        phone="13800000" + number[-3:],
    )
    org.give_login(actor=None, employee=employee, username=number.lower(), password=PASSWORD,
                   check=False)
    employee.refresh_from_db()
    return employee


def seed_defaults() -> None:
    """Roles and the default pipeline come from data migrations; a transactional test's flush
    removes them, so every persona fixture puts them back first."""
    from weiying.pipeline.defaults import seed_pipeline
    from weiying.pipeline.models import Pipeline, Stage

    org.ensure_builtin_roles()
    seed_pipeline(Pipeline, Stage)


@pytest.fixture(scope="module", autouse=True)
def _reseed_after_transactional_tests(request: Any, django_db_blocker: Any) -> Any:
    """A transactional test ends with a flush, which also empties what the data migrations
    seeded. After a module that ran one, put the seed back for the tests that follow."""
    yield
    transactional = any(
        (marker := item.get_closest_marker("django_db")) is not None
        and marker.kwargs.get("transaction")
        for item in request.session.items if item.module is request.module
    )
    if transactional:
        with django_db_blocker.unblock():
            seed_defaults()


@pytest.fixture
def company(db: Any) -> SimpleNamespace:
    seed_defaults()
    hq = org.create_department(actor=None, name="总部", kind="hq", check=False)
    east = org.create_department(actor=None, name="华东分公司", parent=hq, kind="branch",
                                 city="上海", region="华东", check=False)
    team_a = org.create_department(actor=None, name="上海一组", parent=east, kind="team",
                                   city="上海", region="华东", check=False)
    north = org.create_department(actor=None, name="华北分公司", parent=hq, kind="branch",
                                  city="北京", region="华北", check=False)
    team_b = org.create_department(actor=None, name="北京一组", parent=north, kind="team",
                                   city="北京", region="华北", check=False)
    finance_dept = org.create_department(actor=None, name="财务部", parent=hq, kind="other",
                                         check=False)
    ops_dept = org.create_department(actor=None, name="运营部", parent=hq, kind="other",
                                     check=False)

    admin = _person("E001", "管理员", hq, "admin")
    director = _person("E010", "周总监", east, "director")
    manager_a = _person("E020", "王经理", team_a, "manager", leader=director)
    rep_a = _person("E030", "李销售", team_a, "rep", leader=manager_a)
    rep_a2 = _person("E031", "赵销售", team_a, "rep", leader=manager_a)
    manager_b = _person("E040", "孙经理", team_b, "manager")
    rep_b = _person("E050", "钱销售", team_b, "rep", leader=manager_b)
    finance = _person("E060", "陈会计", finance_dept, "finance")
    operations = _person("E070", "吴运营", ops_dept, "operations")
    return SimpleNamespace(
        hq=hq, east=east, team_a=team_a, north=north, team_b=team_b,
        finance_dept=finance_dept, ops_dept=ops_dept,
        admin=admin, director=director, manager_a=manager_a, rep_a=rep_a, rep_a2=rep_a2,
        manager_b=manager_b, rep_b=rep_b, finance=finance, operations=operations,
    )


@pytest.fixture
def login() -> Any:
    """login(employee) -> a Django test Client signed in as that employee; pass
    language="en" for a browser that asks for English."""

    def _login(employee: Any, language: str | None = None) -> Client:
        client = Client(**({"HTTP_ACCEPT_LANGUAGE": language} if language else {}))
        assert client.login(username=employee.number.lower(), password=PASSWORD)
        return client

    return _login


def user_of(employee: Any) -> Any:
    """The employee's user, fresh (no cached role or scope from earlier calls)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=employee.user_id)



@pytest.fixture
def english() -> Any:
    """The test runs in English: messages are asserted as their msgids."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def events_at_once(monkeypatch: Any, db: Any) -> Any:
    """Dispatch each event the moment it is emitted, in order, instead of after a commit that a
    test's transaction never makes; and fail the test if any subscriber failed."""
    from types import SimpleNamespace as NS

    from django.db import transaction

    from weiying.core import events
    from weiying.core.models import EventHandling

    monkeypatch.setattr(events, "transaction", NS(
        atomic=transaction.atomic,
        on_commit=lambda fn, using=None, robust=False: fn(),
    ))
    yield
    failed = list(EventHandling.objects.filter(status="failed").values_list("subscriber",
                                                                           "error"))
    assert failed == [], failed
