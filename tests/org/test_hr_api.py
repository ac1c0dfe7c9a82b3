import datetime as dt
import json

import pytest
from django.test import Client

from tests.conftest import user_of
from tests.org.test_history import assert_history_holds
from weiying.api.tokens import issue_token
from weiying.core.models import AuditLog, DomainEvent
from weiying.org import services as org
from weiying.org.models import Assignment, Employee, Role

pytestmark = pytest.mark.django_db

URL = "/api/hr/employees"


@pytest.fixture
def hr_client(company):
    """The HR system: an API token with the admin role, acting as the admin."""
    _token, raw = issue_token(actor=user_of(company.admin), name="HR system",
                              user=user_of(company.admin), role=Role.objects.get(code="admin"))
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")


def put(client, records):
    return client.put(URL, json.dumps(records), content_type="application/json")


def tally():
    return (Employee.objects.count(), Assignment.objects.count(), AuditLog.objects.count(),
            DomainEvent.objects.count())


RECORDS = [
    {"number": "N002", "name": "新销售", "department": "华东分公司/上海一组", "leader": "N001",
     "position": "销售", "level": "P3", "hire_date": "2026-02-01", "employment_type": "agent",
     "payroll_number": "PAY-2", "status": "probation"},
    {"number": "N001", "name": "新组长", "department": "总部/华东分公司/上海一组",
     "leader": "E010", "position": "组长", "level": "M1"},
    {"number": "E030", "department": "华北分公司/北京一组", "effective_date": "2026-03-01",
     "level": "P5", "leader": "E040"},
    {"number": "E031", "status": "left", "leave_date": "2026-03-31", "successor": "N002"},
]


def test_the_hr_system_puts_the_roster(company, hr_client):
    response = put(hr_client, RECORDS)

    assert response.status_code == 200, response.content
    assert response.json() == {"rows": 4, "created": 2, "updated": 0, "transferred": 1,
                               "promoted": 1, "leaders_changed": 1, "left": 1,
                               "unchanged": 0}
    agent = Employee.objects.get(number="N002")
    assert (agent.employment_type, agent.status, agent.leader.number) == (
        "agent", "probation", "N001")
    assert Employee.objects.get(number="E031").status == "left"
    for employee in Employee.objects.all():
        assert_history_holds(employee)


def test_sending_the_same_records_twice_changes_nothing_the_second_time(company, hr_client):
    assert put(hr_client, RECORDS).status_code == 200
    before = tally()

    response = put(hr_client, RECORDS)

    assert response.status_code == 200
    assert response.json()["unchanged"] == 4
    assert response.json()["created"] == response.json()["promoted"] == 0
    assert tally() == before


def test_bad_records_get_every_problem_with_422_and_nothing_is_applied(company, hr_client):
    before = tally()

    response = put(hr_client, [
        {"number": "N001", "name": "甲", "department": "华东分公司/上海一组"},
        {"number": "N001", "name": "乙", "department": "华东分公司/上海一组",
         "email": "nope"},
        {"number": "N003", "name": "丙", "department": "华东分公司/杭州", "leader": "X9",
         "hire_date": "2026-13-01"},
    ])

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_rows"
    assert body["message"] == ("5 problems in the records; nothing was applied. Fix them and "
                               "send the records again.")
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (2, "number"), (2, "email"), (3, "department"), (3, "hire_date"), (3, "leader")]
    assert body["errors"][0]["message"] == ("Employee number N001 also appears in row 1; "
                                            "list each employee once.")
    assert tally() == before


def test_a_loop_in_the_records_is_refused(company, hr_client):
    response = put(hr_client, [{"number": "E020", "leader": "E030"}])

    assert response.status_code == 422
    assert response.json()["errors"] == [{
        "row": 1, "column": "leader",
        "message": "The reporting line would loop: E020 → E030 → E020; give one of them "
                   "another direct leader."}]
    assert Employee.objects.get(number="E020").leader == company.director


def test_null_clears_a_field_and_a_left_out_field_stays(company, hr_client):
    response = put(hr_client, [{"number": "E030", "phone": None, "leader": None}])

    assert response.status_code == 200
    rep = Employee.objects.get(number="E030")
    assert (rep.phone, rep.leader, rep.hire_date) == ("", None, dt.date(2024, 1, 1))


def test_a_body_that_is_not_a_list_of_records_is_refused(company, hr_client):
    response = put(hr_client, [{"name": "无号"}])

    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["field"] == "0.number"


@pytest.mark.parametrize("persona", ["rep_a", "manager_a", "director", "finance"])
def test_people_without_org_manage_may_not_put_the_roster(company, login, persona):
    before = tally()

    response = put(login(getattr(company, persona)),
                   [{"number": "N001", "name": "甲", "department": "华东分公司/上海一组"}])

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert tally() == before


def test_a_token_with_a_rep_role_may_not_put_the_roster(company):
    _token, raw = issue_token(actor=user_of(company.admin), name="HR", role=Role.objects.get(
        code="rep"), user=user_of(company.admin))

    response = put(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), [{"number": "E030",
                                                                  "level": "P9"}])

    assert response.status_code == 403
    assert Employee.objects.get(number="E030").level == ""


def test_unauthenticated_calls_are_refused(company):
    assert put(Client(), [{"number": "E030", "level": "P9"}]).status_code == 401
    assert Client().get(f"{URL}/E030/history").status_code == 401


# --- history --------------------------------------------------------------------------------
def moved_rep(company):
    org.transfer_employee(actor=None, employee=company.rep_b, department=company.team_a,
                          on=dt.date(2026, 2, 1), check=False)
    org.promote_employee(actor=None, employee=company.rep_b, position="资深销售", level="P5",
                         on=dt.date(2026, 4, 1), check=False)


def test_the_history_lists_every_stretch(company, hr_client):
    moved_rep(company)

    response = hr_client.get(f"{URL}/E050/history")

    assert response.status_code == 200
    assert response.json() == [
        {"department_id": company.team_b.pk, "department": "北京一组", "position": "",
         "level": "", "starts_on": "1900-01-01", "ends_on": "2026-02-01", "reason": "join"},
        {"department_id": company.team_a.pk, "department": "上海一组", "position": "",
         "level": "", "starts_on": "2026-02-01", "ends_on": "2026-04-01",
         "reason": "transfer"},
        {"department_id": company.team_a.pk, "department": "上海一组",
         "position": "资深销售", "level": "P5", "starts_on": "2026-04-01", "ends_on": None,
         "reason": "promotion"},
    ]


def test_a_manager_sees_the_time_spent_in_their_part_of_the_tree(company, login):
    moved_rep(company)

    body = login(company.manager_a).get(f"{URL}/E050/history").json()

    assert [row["starts_on"] for row in body] == ["2026-02-01", "2026-04-01"]


def test_the_history_of_someone_outside_the_scope_is_not_found(company, login):
    for persona, number in [("rep_a", "E031"), ("manager_a", "E050"), ("manager_b", "E030")]:
        response = login(getattr(company, persona)).get(f"{URL}/{number}/history")
        assert response.status_code == 404, persona
    assert login(company.rep_a).get(f"{URL}/E030/history").status_code == 200


def test_the_hr_system_sets_and_clears_roles(company, hr_client):
    response = put(hr_client, [{"number": "E030", "role": "Sales manager"},
                               {"number": "E050", "role": None}])
    refused = put(hr_client, [{"number": "E031", "role": "boss"}])

    assert response.status_code == 200, response.json()
    assert Employee.objects.get(number="E030").role.code == "manager"
    assert Employee.objects.get(number="E050").role is None
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["column"] == "role"
