import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from weiying.core.models import AuditLog
from weiying.customers import services as customers
from weiying.org import services
from weiying.org.models import Department, Employee
from weiying.pipeline.services import leads, opportunities

pytestmark = pytest.mark.django_db


def names_in(response):
    return {e.name for e in response.context["state"].page.items}


def chart_counts(company, response):
    by_pk = {row["department"].pk: row["head_count"] for row in response.context["rows"]}
    names = {pk: name for name, pk in [
        ("hq", company.hq.pk), ("east", company.east.pk), ("team_a", company.team_a.pk),
        ("north", company.north.pk), ("team_b", company.team_b.pk),
        ("finance_dept", company.finance_dept.pk), ("ops_dept", company.ops_dept.pk)]}
    return {names.get(pk, pk): n for pk, n in by_pk.items()}


# --- the chart ------------------------------------------------------------------------------
def test_the_chart_shows_every_department_with_its_subtree_head_count_to_an_admin(company, login):
    response = login(company.admin).get(reverse("org:chart"))

    assert response.status_code == 200
    assert chart_counts(company, response) == {
        "hq": 9, "east": 4, "team_a": 3, "north": 2, "team_b": 2, "finance_dept": 1,
        "ops_dept": 1}
    assert [row["indent"] for row in response.context["rows"]][:3] == [0, 2, 4]


@pytest.mark.parametrize(("persona", "expected"), [
    ("director", {"east": 4, "team_a": 3}),
    ("manager_a", {"team_a": 3}),
    ("rep_a", {"team_a": 1}),
    ("manager_b", {"team_b": 2}),
])
def test_the_chart_keeps_to_the_departments_and_people_one_may_see(company, login, persona,
                                                                     expected):
    response = login(getattr(company, persona)).get(reverse("org:chart"))

    assert chart_counts(company, response) == expected


def test_head_counts_leave_out_former_employees_and_count_new_sub_teams(company, login):
    admin = user_of(company.admin)
    sub = services.create_department(actor=admin, name="上海一组A", parent=company.team_a)
    services.create_employee(actor=admin, number="E032", name="新人", department=sub)
    services.mark_left(actor=admin, employee=company.rep_a2, leave_date=dt.date(2026, 6, 30))

    counts = chart_counts(company, login(company.admin).get(reverse("org:chart")))

    # 9 people, one left, one joined the new sub-team below 上海一组.
    assert (counts["hq"], counts["east"], counts["team_a"], counts[sub.pk]) == (9, 4, 3, 1)


def test_the_chart_offers_changes_only_to_those_who_manage_the_organisation(company, login):
    edit = reverse("org:department_edit", args=[company.team_a.pk])

    assert edit in login(company.admin).get(reverse("org:chart")).content.decode()
    assert edit not in login(company.director).get(reverse("org:chart")).content.decode()


def test_the_navigation_links_the_chart(company, login):
    page = login(company.rep_a, language="en").get(reverse("web:home")).content.decode()

    assert f'href="{reverse("org:chart")}"' in page
    assert "Organisation" in page


# --- the roster -----------------------------------------------------------------------------
def test_a_rep_sees_only_themselves_on_the_roster(company, login):
    assert names_in(login(company.rep_a).get(reverse("org:employee_list"))) == {"李销售"}


def test_a_manager_sees_their_team(company, login):
    response = login(company.manager_a).get(reverse("org:employee_list"))

    assert names_in(response) == {"王经理", "李销售", "赵销售"}


def test_an_admin_sees_everyone(company, login):
    assert len(names_in(login(company.admin).get(reverse("org:employee_list")))) == 9


@pytest.mark.parametrize(("params", "expected"), [
    ({"q": "销售"}, {"李销售", "赵销售", "钱销售"}),
    ({"q": "E04"}, {"孙经理"}),
    ({"status": "left"}, {"赵销售"}),
    ({"role": "manager"}, {"王经理", "孙经理"}),
    ({"department": "east"}, {"周总监", "王经理", "李销售", "赵销售"}),
    ({"department": "team_b", "q": "钱"}, {"钱销售"}),
])
def test_the_roster_filters(company, login, params, expected):
    services.mark_left(actor=user_of(company.admin), employee=company.rep_a2,
                       leave_date=dt.date(2026, 6, 30))
    if "department" in params:
        params = {**params, "department": getattr(company, params["department"]).pk}

    assert names_in(login(company.admin).get(reverse("org:employee_list"), params)) == expected


def test_a_department_outside_the_scope_filters_to_nobody(company, login):
    response = login(company.manager_a).get(reverse("org:employee_list"),
                                            {"department": company.team_b.pk})

    assert names_in(response) == set()


def test_the_roster_pages_by_keyset_in_the_chosen_order(company, login):
    client = login(company.admin)
    first = client.get(reverse("org:employee_list"), {"sort": "name"})
    names = [e.name for e in first.context["state"].page.items]

    assert names == sorted(names)
    assert first.context["state"].page.next_cursor is None


def test_phones_are_masked_for_a_manager(company, login):
    page = login(company.manager_a).get(reverse("org:employee_list")).content.decode()

    assert "138****0030" in page and "13800000030" not in page
    assert not AuditLog.objects.filter(action="customer.unmask").exists()


def test_phones_show_in_full_to_a_director_and_the_view_is_audited(company, login):
    page = login(company.director).get(reverse("org:employee_list")).content.decode()

    assert "13800000030" in page
    row = AuditLog.objects.get(action="customer.unmask", object_type="org.employee")
    assert row.actor_id == company.director.user_id
    assert sorted(row.after["ids"]) == sorted(
        [company.director.pk, company.manager_a.pk, company.rep_a.pk, company.rep_a2.pk])


def test_the_roster_exports_the_visible_people_with_masked_phones(company, login):
    response = login(company.manager_a, language="en").get(reverse("org:employee_list"),
                                                           {"export": "csv"})

    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("Employee number,Name,Department,Job title")
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["E020", "E030", "E031"]
    assert "138****0030" in text and "13800000030" not in text
    assert AuditLog.objects.filter(action="export", object_type="org.employee").count() == 1


def test_a_rep_may_not_export_the_roster(company, login):
    response = login(company.rep_a).get(reverse("org:employee_list"), {"export": "xlsx"})

    assert response.status_code == 403


# --- an employee ----------------------------------------------------------------------------
def test_the_employee_page_shows_the_chain_the_reports_and_the_open_work(company, login):
    actor = user_of(company.rep_a)
    customer = customers.create_customer(actor=actor, name="页面客户", owner=company.rep_a)
    leads.capture_lead(actor=actor, name="页面线索", phone="13912345678", owner=company.rep_a)
    opportunities.create_opportunity(actor=actor, customer=customer, name="页面商机",
                                     amount="1000.00")

    response = login(company.director).get(
        reverse("org:employee_detail", args=[company.rep_a.pk]))

    assert response.status_code == 200
    assert [e.name for e in response.context["leaders"]] == ["周总监", "王经理"]
    assert response.context["work"] == {"leads": 1, "customers": 1, "opportunities": 1}
    reports = login(company.director).get(
        reverse("org:employee_detail", args=[company.manager_a.pk])).context["reports"]
    assert {e.name for e in reports} == {"李销售", "赵销售"}


def test_open_work_counts_keep_to_the_viewers_scope(company, login):
    customers.create_customer(actor=user_of(company.rep_a), name="页面客户", owner=company.rep_a)
    services.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                               department=company.team_b)
    # The customer moved to 北京一组 with its owner; manager_b now sees rep_a's work.
    page = login(company.manager_b).get(reverse("org:employee_detail", args=[company.rep_a.pk]))

    assert page.context["work"]["customers"] == 1


def test_a_leader_outside_the_scope_is_named_but_not_linked(company, login):
    page = login(company.rep_a).get(reverse("org:employee_detail", args=[company.rep_a.pk]))

    html = page.content.decode()
    assert "王经理" in html
    assert reverse("org:employee_detail", args=[company.manager_a.pk]) not in html


@pytest.mark.parametrize(("persona", "target"), [
    ("rep_a", "rep_a2"), ("rep_b", "rep_a"), ("manager_a", "director"), ("manager_a", "rep_b"),
    ("director", "manager_b"),
])
def test_an_employee_outside_the_scope_is_not_found(company, login, persona, target):
    client = login(getattr(company, persona))

    response = client.get(reverse("org:employee_detail", args=[getattr(company, target).pk]))

    assert response.status_code == 404


# --- writes ---------------------------------------------------------------------------------
WRITE_PAGES = ["employee_edit", "employee_transfer", "employee_promote", "employee_leader",
               "employee_leave"]


@pytest.mark.parametrize("persona", ["rep_a", "manager_a", "director", "finance"])
def test_writes_are_forbidden_without_org_manage(company, login, persona):
    client = login(getattr(company, persona), language="en")
    pk = getattr(company, persona).pk

    for name in WRITE_PAGES:
        url = reverse(f"org:{name}", args=[pk])
        assert client.get(url).status_code == 403, name
        response = client.post(url, {"leave_date": "2026-11-30", "name": "X"})
        assert response.status_code == 403, name
        assert "Manage departments, employees and roles" in response.content.decode()
    for url in [reverse("org:employee_new"), reverse("org:department_new"),
                reverse("org:department_edit", args=[company.team_a.pk]),
                reverse("org:department_move", args=[company.team_a.pk])]:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "X"}).status_code == 403, url
    assert Employee.objects.get(pk=pk).status == "active"


def test_write_buttons_show_only_to_those_who_manage_the_organisation(company, login):
    url = reverse("org:employee_detail", args=[company.rep_a.pk])
    edit = reverse("org:employee_edit", args=[company.rep_a.pk])

    assert edit in login(company.admin).get(url).content.decode()
    assert edit not in login(company.manager_a).get(url).content.decode()


def test_an_admin_adds_an_employee(company, login):
    response = login(company.admin).post(reverse("org:employee_new"), {
        "number": "E099", "name": "新同事", "department": company.team_a.pk,
        "leader": company.manager_a.number, "role": "", "hire_date": "2026-03-01",
        "phone": "13912345678"})

    employee = Employee.objects.get(number="E099")
    assert response.status_code == 302
    assert response["Location"] == reverse("org:employee_detail", args=[employee.pk])
    assert employee.leader_id == company.manager_a.pk
    assert employee.path.startswith(company.manager_a.path)


def test_an_unknown_leader_number_is_shown_on_the_form(company, login):
    response = login(company.admin, language="en").post(reverse("org:employee_new"), {
        "number": "E099", "name": "新同事", "department": company.team_a.pk, "leader": "E999"})

    assert response.status_code == 200
    assert response.context["form"].errors["leader"] == [
        "No employee numbered E999 among those you may see; check the number."]


def test_a_taken_employee_number_is_shown_on_the_form(company, login):
    response = login(company.admin, language="en").post(reverse("org:employee_new"), {
        "number": "E030", "name": "重号", "department": company.team_a.pk})

    assert response.context["form"].errors["number"] == [
        "Employee number E030 is already used; pick another."]


def test_an_admin_edits_a_profile_and_role(company, login):
    response = login(company.admin).post(
        reverse("org:employee_edit", args=[company.rep_a.pk]),
        {"name": "李销售", "position": "资深销售", "level": "P5", "role": "",
         "phone": "13800000030", "status": "probation"})

    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert response.status_code == 302
    assert (rep.position, rep.level, rep.role_id, rep.status) == ("资深销售", "P5", None,
                                                                  "probation")


def test_the_edit_form_is_filled_with_the_profile(company, login):
    response = login(company.admin).get(reverse("org:employee_edit", args=[company.rep_a.pk]))

    form = response.context["form"]
    assert form["name"].value() == "李销售"
    assert form["status"].value() == "active"
    assert form["role"].value() == company.rep_a.role_id


def test_a_transfer_to_the_same_department_is_shown_on_the_form(company, login):
    response = login(company.admin, language="en").post(
        reverse("org:employee_transfer", args=[company.rep_a.pk]),
        {"department": company.team_a.pk})

    assert response.status_code == 200
    assert response.context["form"].errors["department"] == [
        "李销售 is already in 上海一组; pick another department."]


def test_an_admin_transfers_and_changes_the_leader(company, login):
    client = login(company.admin)

    client.post(reverse("org:employee_transfer", args=[company.rep_a.pk]),
                {"department": company.team_b.pk})
    client.post(reverse("org:employee_leader", args=[company.rep_a.pk]),
                {"leader": company.manager_b.number})

    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert (rep.department_id, rep.leader_id) == (company.team_b.pk, company.manager_b.pk)


def test_a_back_dated_transfer_and_a_promotion_show_in_the_hr_history(company, login):
    client = login(company.admin, language="en")
    today = timezone.localdate()
    moved_on = today - dt.timedelta(days=10)

    client.post(reverse("org:employee_transfer", args=[company.rep_a.pk]),
                {"department": company.team_b.pk, "on": moved_on.isoformat()})
    response = client.post(reverse("org:employee_promote", args=[company.rep_a.pk]),
                           {"position": "资深销售", "level": "P6", "on": ""})
    page = client.get(reverse("org:employee_detail", args=[company.rep_a.pk]))

    assert response.status_code == 302
    rows = [(r.starts_on, r.department_id, r.position, r.level, r.reason)
            for r in page.context["history"]]
    assert rows == [
        (today, company.team_b.pk, "资深销售", "P6", "promotion"),
        (moved_on, company.team_b.pk, company.rep_a.position, company.rep_a.level, "transfer"),
        (dt.date(1900, 1, 1), company.team_a.pk, company.rep_a.position, company.rep_a.level,
         "join"),
    ]
    assert page.context["history"][1].until_label == (today - dt.timedelta(days=1)).isoformat()
    assert "New position or level" in page.content.decode()


def test_a_change_dated_before_the_last_one_or_ahead_is_refused_on_the_form(company, login):
    client = login(company.admin, language="en")
    today = timezone.localdate()
    client.post(reverse("org:employee_transfer", args=[company.rep_a.pk]),
                {"department": company.team_b.pk, "on": today.isoformat()})

    earlier = client.post(reverse("org:employee_promote", args=[company.rep_a.pk]),
                          {"position": "主管", "level": "M1",
                           "on": (today - dt.timedelta(days=3)).isoformat()})
    ahead = client.post(reverse("org:employee_transfer", args=[company.rep_a.pk]),
                        {"department": company.team_a.pk,
                         "on": (today + dt.timedelta(days=3)).isoformat()})

    assert earlier.status_code == 200
    assert earlier.context["form"].errors["on"] == [
        f"李销售's last change took effect on {today.isoformat()}; a later change cannot be "
        f"dated before it. Enter {today.isoformat()} or a later date."]
    assert "is in the future" in ahead.context["form"].errors["on"][0]
    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert (rep.department_id, rep.position) == (company.team_b.pk, company.rep_a.position)


def test_the_edit_form_sets_the_employment_type_and_payroll_number(company, login):
    client = login(company.admin, language="en")
    url = reverse("org:employee_edit", args=[company.rep_a.pk])

    client.post(url, {"name": "李销售", "status": "active", "employment_type": "agent",
                      "payroll_number": "PR-0030"})
    taken = client.post(reverse("org:employee_edit", args=[company.rep_b.pk]),
                        {"name": company.rep_b.name, "status": "active",
                         "payroll_number": "PR-0030"})

    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert (rep.employment_type, rep.payroll_number) == ("agent", "PR-0030")
    assert taken.status_code == 200
    assert "PR-0030" in taken.context["form"].errors["payroll_number"][0]
    assert Employee.objects.get(pk=company.rep_b.pk).payroll_number == ""


def test_an_empty_leader_makes_the_employee_report_to_nobody(company, login):
    login(company.admin).post(reverse("org:employee_leader", args=[company.rep_a.pk]),
                              {"leader": ""})

    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert rep.leader_id is None and rep.path == f"{rep.pk:08d}"


def test_a_leave_date_before_the_hire_date_is_shown_on_the_form(company, login):
    response = login(company.admin, language="en").post(
        reverse("org:employee_leave", args=[company.rep_a.pk]), {"leave_date": "2023-01-01"})

    assert response.status_code == 200
    assert response.context["form"].errors["leave_date"] == [
        "The leave date 2023-01-01 is before the hire date 2024-01-01; enter a date on or "
        "after the hire date."]


def test_leaving_twice_is_shown_on_top_of_the_form(company, login):
    client = login(company.admin, language="en")
    url = reverse("org:employee_leave", args=[company.rep_a.pk])

    assert client.post(url, {"leave_date": "2026-11-30"}).status_code == 302
    response = client.post(url, {"leave_date": "2026-12-01"})

    assert response.context["form"].non_field_errors() == [
        "李销售 already left on 2026-11-30; a departure is recorded only once."]


def test_the_write_pages_are_in_chinese_by_default(company, login):
    page = login(company.admin).get(
        reverse("org:employee_leave", args=[company.rep_a.pk])).content.decode()

    assert "离职日期" in page


def test_an_admin_creates_edits_and_moves_a_department(company, login):
    client = login(company.admin)

    response = client.post(reverse("org:department_new"), {
        "parent": company.east.pk, "name": "上海二组", "kind": "team", "city": "上海"})
    team = Department.objects.get(name="上海二组")
    assert response.status_code == 302 and team.parent_id == company.east.pk
    client.post(reverse("org:department_edit", args=[team.pk]), {
        "name": "上海二组", "kind": "team", "city": "苏州", "manager": company.rep_a.number})
    client.post(reverse("org:department_move", args=[team.pk]), {"parent": company.north.pk})

    team.refresh_from_db()
    assert (team.city, team.manager_id, team.parent_id, team.depth) == (
        "苏州", company.rep_a.pk, company.north.pk, 3)


def test_a_move_under_its_own_subtree_is_shown_on_the_form(company, login):
    response = login(company.admin, language="en").post(
        reverse("org:department_move", args=[company.east.pk]), {"parent": company.team_a.pk})

    assert response.context["form"].errors["parent"] == [
        "A department cannot move under itself or one of its own sub-departments."]
