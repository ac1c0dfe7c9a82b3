import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation
from openpyxl import Workbook, load_workbook

from tests.conftest import _person
from tests.org.test_history import assert_history_holds
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.org import services as org
from weiying.org.models import Assignment, Employee, Role
from weiying.org.roster_import import ROSTER_HEADERS, import_roster, parse_date

pytestmark = pytest.mark.django_db

HEADER = ["工号", "姓名", "部门", "职位", "职级", "上级工号", "入职日期", "手机", "邮箱",
          "用工类型", "工资号", "状态", "离职日期", "交接人工号", "生效日期"]


def xlsx(rows, header=HEADER):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    out.name = "roster.xlsx"
    return out


def csv_file(text, encoding="utf-8"):
    out = io.BytesIO(text.encode(encoding))
    out.name = "roster.csv"
    return out


def row(number, name="", department="", position="", level="", leader="", hire="",
        phone="", email="", kind="", payroll="", status="", leave="", successor="", on=""):
    return [number, name, department, position, level, leader, hire, phone, email, kind,
            payroll, status, leave, successor, on]


def tally():
    return (Employee.objects.count(), Assignment.objects.count(), AuditLog.objects.count(),
            DomainEvent.objects.count())


@pytest.fixture
def admin(company):
    return company.admin.user


def refused(admin, rows, header=HEADER):
    """Import a file that must be refused whole; returns its problems as (row, column,
    message) after checking nothing was written."""
    before = tally()
    with translation.override("en"):
        report = import_roster(xlsx(rows, header), actor=admin)
    assert not report.ok
    assert tally() == before
    assert report.created == report.updated == report.transferred == 0
    return [(e.row, e.column, e.message) for e in report.errors]


# --- what a good file does ------------------------------------------------------------------
def test_a_new_team_is_created_with_leaders_listed_after_their_reports(company, admin):
    file = xlsx([
        row("N002", "新销售", "华东分公司/上海一组", "销售", "P3", leader="N001",
            hire="2026-01-05", phone="13900000002", email="n2@example.com", kind="兼职",
            payroll="PAY-2", status="试用"),
        row("N001", "新组长", "总部/华东分公司/上海一组", "组长", "M1", leader="E010",
            hire=dt.datetime(2025, 7, 1), kind="全职", payroll="PAY-1"),
    ])

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    assert (report.rows, report.created, report.unchanged) == (2, 2, 0)
    lead, rep = Employee.objects.get(number="N001"), Employee.objects.get(number="N002")
    assert rep.leader == lead and lead.leader == company.director
    assert rep.path.startswith(lead.path) and lead.path.startswith(company.director.path)
    assert (rep.department, rep.position, rep.level, rep.status) == (
        company.team_a, "销售", "P3", "probation")
    assert (rep.employment_type, rep.payroll_number, rep.hire_date) == (
        "part_time", "PAY-2", dt.date(2026, 1, 5))
    assert (lead.employment_type, lead.hire_date) == ("full_time", dt.date(2025, 7, 1))
    assert (rep.phone, rep.email) == ("13900000002", "n2@example.com")
    assert AuditLog.objects.filter(action="employee.create").count() == 2 + 9
    assert_history_holds(rep)


def test_known_numbers_are_transferred_promoted_and_updated_from_the_effective_date(
        company, admin):
    file = xlsx([
        row("E030", "李销售", "华北分公司/北京一组", "资深销售", "P5", "E040",
            phone="13800000030", on="2026/3/1"),
        row("E031", "赵销售", "华东分公司/上海一组", email="zhao@example.com", leader="E020",
            phone="13800000031"),
        row("E050", "钱销售", "华北分公司/北京一组", leader="E040", phone="13800000050"),
    ])

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    assert report.counts() == {"rows": 3, "created": 0, "updated": 1, "transferred": 1,
                               "promoted": 1, "leaders_changed": 1, "left": 0,
                               "unchanged": 1}
    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert (rep.department, rep.position, rep.level, rep.leader) == (
        company.team_b, "资深销售", "P5", company.manager_b)
    on = dt.date(2026, 3, 1)
    assert [(a.department_id, a.level, a.starts_on, a.ends_on) for a in
            assert_history_holds(rep)] == [
        (company.team_a.pk, "", dt.date(1900, 1, 1), on), (company.team_b.pk, "P5", on, None)]
    assert Employee.objects.get(pk=company.rep_a2.pk).email == "zhao@example.com"
    transfer = AuditLog.objects.get(action="employee.transfer")
    assert transfer.after["on"] == "2026-03-01"
    assert DomainEvent.objects.filter(name="employee.promoted").count() == 1


def test_the_same_file_twice_changes_nothing_the_second_time(company, admin):
    rows = [
        row("N001", "新组长", "华东分公司/上海一组", "组长", "M1", "E010", payroll="P-1"),
        row("E030", "李销售", "华北分公司/北京一组", "销售", "P4", "N001",
            phone="13800000030", on="2026-03-01"),
        row("E031", "赵销售", "华东分公司/上海一组", leader="E020", phone="13800000031",
            status="离职", leave="2026-03-31", successor="E020"),
    ]
    first = import_roster(xlsx(rows), actor=admin)
    assert first.ok, first.errors
    before = tally()

    second = import_roster(xlsx(rows), actor=admin)

    assert second.ok, second.errors
    assert second.counts() == {"rows": 3, "created": 0, "updated": 0, "transferred": 0,
                               "promoted": 0, "leaders_changed": 0, "left": 0,
                               "unchanged": 3}
    assert tally() == before


def test_a_dash_clears_a_field_and_an_empty_cell_keeps_it(company, admin):
    file = xlsx([row("E030", phone="-", leader="-", hire="")])

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert (rep.phone, rep.leader, rep.hire_date, rep.name) == (
        "", None, dt.date(2024, 1, 1), "李销售")
    assert (report.updated, report.leaders_changed) == (1, 1)


def test_a_csv_with_english_headers_and_only_some_columns_leaves_the_rest_alone(
        company, admin):
    rep = company.rep_a
    org.promote_employee(actor=admin, employee=rep, position="销售", level="P4",
                         on=dt.date(2026, 1, 1))
    text = "employee_number,level,payroll_number\nE030,P5,PAY-30\n"

    report = import_roster(csv_file(text, "gb18030"), actor=admin)

    assert report.ok, report.errors
    rep.refresh_from_db()
    assert (rep.position, rep.level, rep.payroll_number, rep.phone, rep.leader) == (
        "销售", "P5", "PAY-30", "13800000030", company.manager_a)
    assert rep.department == company.team_a and rep.status == "active"
    assert [(a.level, a.starts_on) for a in assert_history_holds(rep)][-1] == (
        "P5", timezone.localdate())


def test_leaders_can_swap_places_in_one_file(company, admin):
    # manager_a reports to director now; afterwards director reports to manager_a
    file = xlsx([["E010", "E020"], ["E020", "-"]],
                header=["工号", "上级工号"])

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    assert report.leaders_changed == 2
    director, manager = (Employee.objects.get(number=n) for n in ("E010", "E020"))
    assert director.leader == manager and manager.leader is None
    assert director.path.startswith(manager.path)
    assert Employee.objects.get(number="E030").path.startswith(manager.path)


def test_paths_stay_true_when_a_leader_moves_with_a_whole_subtree_first(company, admin):
    # E010 (and everyone below) moves under E040; then E030 moves under E031, whose own
    # path has just changed with that move
    file = xlsx([["E030", "E031", ""], ["E031", "", "13900000031"], ["E010", "E040", ""]],
                header=["工号", "上级工号", "手机"])

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    numbers = ["E040", "E010", "E020", "E031", "E030"]
    chain = [Employee.objects.get(number=n) for n in numbers]
    for upper, lower in zip(chain, chain[1:], strict=False):
        assert lower.leader == upper
        assert lower.path == upper.path + f"{lower.pk:08d}", lower.number


def test_a_leaver_with_a_successor_hands_their_leads_over(company, admin, events_at_once):
    from weiying.pipeline.models import Lead
    from weiying.pipeline.services import leads

    lead = leads.capture_lead(actor=None, name="线索甲", phone="13911112222",
                              owner=company.rep_a2)
    file = xlsx([["E031", "离职", "2026-03-31", "E030"]],
                header=["工号", "状态", "离职日期", "交接人工号"])

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    assert report.left == 1
    leaver = Employee.objects.get(pk=company.rep_a2.pk)
    assert (leaver.status, leaver.leave_date) == ("left", dt.date(2026, 3, 31))
    assert Lead.objects.get(pk=lead.pk).owner == company.rep_a
    event = DomainEvent.objects.get(name="employee.left")
    assert event.data["successor_id"] == company.rep_a.pk


# --- refused files: one message per problem, nothing written ---------------------------------
def test_duplicate_numbers_are_refused(company, admin):
    problems = refused(admin, [row("N001", "甲", "华东分公司/上海一组"),
                               row("N001", "乙", "华东分公司/上海一组")])

    assert problems == [(3, "工号", "Employee number N001 also appears in row 2; list each "
                                    "employee once.")]


def test_an_unknown_department_is_refused(company, admin):
    problems = refused(admin, [row("N001", "甲", "华东分公司/杭州一组")])

    assert problems == [(2, "部门", 'No department 华东分公司/杭州一组 among those you manage. '
                                   'Write the path of names from the top, separated by "/" '
                                   '(like 总部/华东分公司/上海一组); check the spelling or '
                                   'create the department first.')]


def test_an_unknown_leader_is_refused(company, admin):
    problems = refused(admin, [row("N001", "甲", "华东分公司/上海一组", leader="X999")])

    assert problems == [(2, "上级工号", "No employee X999 in this file or among the people you "
                                      "manage; check the number or add a row for them.")]


def test_a_loop_among_the_rows_of_the_file_is_refused(company, admin):
    problems = refused(admin, [
        row("N001", "甲", "华东分公司/上海一组", leader="N002"),
        row("N002", "乙", "华东分公司/上海一组", leader="N003"),
        row("N003", "丙", "华东分公司/上海一组", leader="N001"),
        row("N004", "丁", "华东分公司/上海一组", leader="N003"),
    ])

    assert [(r, c) for r, c, _m in problems] == [(2, "上级工号"), (3, "上级工号"),
                                                 (4, "上级工号")]
    assert problems[0][2] == ("The reporting line would loop: N001 → N002 → N003 → N001; "
                              "give one of them another direct leader.")


def test_a_loop_through_people_not_in_the_file_is_refused(company, admin):
    # E020 reports to E010 already; the file makes E010 report to E030, who reports to E020
    problems = refused(admin, [["E010", "E030"]], header=["工号", "上级工号"])

    assert problems == [(2, "上级工号", "The reporting line would loop: E010 → E030 → E020 → "
                                      "E010; give one of them another direct leader.")]


def test_bad_dates_emails_and_choices_are_refused(company, admin):
    problems = refused(admin, [
        row("N001", "甲", "华东分公司/上海一组", hire="2026-02-30", email="not-an-email",
            phone="12", kind="合同工", status="休假"),
    ])

    assert problems == [
        (2, "状态", "Unknown status 休假; use 在职, 试用 or 离职."),
        (2, "手机", "A phone number has 7 to 20 digits (a mobile has 11); check the number."),
        (2, "邮箱", "not-an-email is not an email address; check it or leave it empty."),
        (2, "用工类型", "Unknown employment type 合同工; use 全职, 兼职, 外包代理 or 实习."),
        (2, "入职日期", "2026-02-30 is not a date; write it as 2024-03-01."),
    ]


def test_a_departure_needs_a_leave_date_and_a_successor_who_stays(company, admin):
    problems = refused(admin, [
        row("E030", status="离职"),
        row("E031", status="离职", leave="2026-03-01", successor="E030"),
        row("E020", leave="2026-03-01"),
    ], header=HEADER)

    assert problems == [
        (2, "离职日期", "The status 离职 needs a leave date; fill it in."),
        (3, "交接人工号", "E030 leaves in this file (row 2); pick someone who stays."),
        (4, "离职日期", "A leave date goes with the status 离职; set the status or clear "
                      "the date."),
    ]


def test_payroll_numbers_are_unique(company, admin):
    org.update_employee(actor=admin, employee=company.rep_b,
                        **{**{f: getattr(company.rep_b, f) for f in org.EMPLOYEE_FIELDS},
                           "payroll_number": "PAY-50"})
    problems = refused(admin, [
        row("E030", payroll="PAY-50"), row("E031", payroll="PAY-31"),
        row("E020", payroll="PAY-31"),
    ], header=HEADER)

    assert [(r, c, m) for r, c, m in problems if c == "工资号"] == [
        (2, "工资号", "Payroll number PAY-50 already belongs to employee E050; check the "
                    "number."),
        (4, "工资号", "Payroll number PAY-31 also appears in row 3; each payroll number "
                    "belongs to one employee."),
    ]


def test_a_transfer_dated_before_the_last_change_is_refused(company, admin):
    org.transfer_employee(actor=admin, employee=company.rep_a, department=company.team_b,
                          on=dt.date(2026, 5, 1))

    problems = refused(admin, [["E030", "华东分公司/上海一组", "2026-04-01"]],
                       header=["工号", "部门", "生效日期"])

    assert problems == [(2, "生效日期", "李销售's last change took effect on 2026-05-01; a "
                                      "transfer or promotion cannot be dated before it. "
                                      "Enter 2026-05-01 or a later effective date.")]


def test_a_new_employee_needs_a_name_and_a_department(company, admin):
    problems = refused(admin, [row("N001"), ["", "无号"], ["E030", "-"]],
                       header=["工号", "姓名"])

    assert problems == [
        (2, "姓名", "A new employee needs this; fill it in."),
        (2, "部门", "A new employee needs this; fill it in."),
        (3, "工号", "An employee number is required; fill it in."),
        (4, "姓名", "This cannot be cleared; enter a value or leave the cell empty to keep it."),
    ]


def test_a_former_employee_is_not_rehired_by_a_file(company, admin):
    org.mark_left(actor=admin, employee=company.rep_a2, leave_date=dt.date(2026, 1, 31))

    problems = refused(admin, [row("E031", status="在职")], header=HEADER)

    assert problems == [(2, "状态", "赵销售 (E031) left on 2026-01-31; a former employee's "
                                   "record stays as it was. A rehire gets a new employee "
                                   "number.")]


def test_a_file_without_a_number_column_is_refused_whole(company, admin):
    with translation.override("en"), pytest.raises(ValidationFailed) as caught:
        import_roster(xlsx([["甲"]], header=["姓名"]), actor=admin)

    assert caught.value.code == "bad_file"
    assert str(caught.value.message) == ("The file has no employee number column; name the "
                                         "column 工号 / 员工编号 / employee_number.")


def test_a_refusal_while_applying_undoes_the_rows_already_written(company, admin,
                                                                  monkeypatch):
    def refuse(**kwargs):
        raise ValidationFailed("refused by the service", field="level")

    monkeypatch.setattr(org, "promote_employee", refuse)
    before = tally()

    report = import_roster(xlsx([row("N001", "甲", "华东分公司/上海一组"),
                                 row("E030", level="P9")]), actor=admin)

    assert [(e.row, e.column, e.message) for e in report.errors] == [
        (3, "职级", "refused by the service")]
    assert report.created == 0
    assert tally() == before


@pytest.mark.parametrize("text,expected", [
    ("2024-03-01", dt.date(2024, 3, 1)), ("2024/3/1", dt.date(2024, 3, 1)),
    ("2024年3月1日", dt.date(2024, 3, 1)), ("20240301", dt.date(2024, 3, 1)),
    ("2024-03-01T00:00:00", dt.date(2024, 3, 1)),
])
def test_dates_are_read_in_the_usual_spellings(text, expected):
    assert parse_date(text) == expected


# --- who may import --------------------------------------------------------------------------
def test_a_manager_without_org_manage_is_refused(company):
    before = tally()

    with pytest.raises(PermissionDenied):
        import_roster(xlsx([row("N001", "甲", "华东分公司/上海一组")]),
                      actor=company.manager_a.user)

    assert tally() == before


def test_an_hr_officer_of_one_branch_cannot_reach_another(company):
    Role.objects.create(code="hr_east", name="华东人事", data_scope="subtree",
                        permissions=["org.manage"])
    hr = _person("E080", "人事专员", company.east, "hr_east")

    problems = refused(hr.user, [
        row("E050", level="P9"), row("N001", "甲", "华北分公司/北京一组"),
        row("N002", "乙", "华东分公司/上海一组", leader="E040"),
    ])

    assert [(r, c) for r, c, _m in problems] == [(2, "工号"), (3, "部门"), (4, "上级工号")]
    assert problems[0][2].startswith("Employee number E050 belongs to someone outside the part")


# --- the desk page ---------------------------------------------------------------------------
def test_the_page_applies_a_good_file_and_shows_the_counts(company, login):
    client = login(company.admin, language="en")
    upload = SimpleUploadedFile("team.xlsx", xlsx([row("N001", "甲", "华东分公司/上海一组")])
                                .getvalue())

    response = client.post(reverse("org:roster_import"), {"file": upload})

    assert response.status_code == 200
    assert response.context["report"].created == 1
    assert "team.xlsx applied" in response.content.decode()
    assert Employee.objects.filter(number="N001").exists()


def test_the_page_lists_the_problems_and_applies_nothing(company, login):
    client = login(company.admin, language="en")
    upload = SimpleUploadedFile("team.xlsx", xlsx([row("N001", "甲", "无此部门")]).getvalue())

    response = client.post(reverse("org:roster_import"), {"file": upload})

    assert response.status_code == 400
    page = response.content.decode()
    assert "1 problem found; nothing was applied." in page
    assert "No department 无此部门" in page
    assert not Employee.objects.filter(number="N001").exists()


def test_the_template_holds_every_header(company, login):
    response = login(company.admin).get(reverse("org:roster_template"))

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    assert [c.value for c in sheet[1]] == [a[0] for a in ROSTER_HEADERS.values()] == [*HEADER, "角色"]


def test_the_roster_links_to_the_import_for_hr_only(company, login):
    url = reverse("org:roster_import")
    assert url in login(company.admin).get(reverse("org:employee_list")).content.decode()
    assert url not in login(company.manager_a).get(
        reverse("org:employee_list")).content.decode()


@pytest.mark.parametrize("persona", ["rep_a", "manager_a", "finance"])
def test_the_pages_refuse_people_without_org_manage(company, login, persona):
    client = login(getattr(company, persona))

    assert client.get(reverse("org:roster_import")).status_code == 403
    assert client.get(reverse("org:roster_template")).status_code == 403
    upload = SimpleUploadedFile("team.xlsx", xlsx([row("N001", "甲", "华东分公司/上海一组")])
                                .getvalue())
    assert client.post(reverse("org:roster_import"), {"file": upload}).status_code == 403
    assert not Employee.objects.filter(number="N001").exists()


def test_a_role_is_given_by_its_chinese_name_or_code_and_a_dash_takes_it_away(company, admin):
    header = ["工号", "姓名", "部门", "角色"]
    file = xlsx([["E030", "", "", "销售经理"], ["E050", "", "", "-"],
                 ["E099", "新人", "总部/华东分公司/上海一组", "rep"]], header=header)

    report = import_roster(file, actor=admin)

    assert report.ok, report.errors
    roles = dict(Employee.objects.filter(number__in=["E030", "E050", "E099"])
                 .values_list("number", "role__code"))
    assert roles == {"E030": "manager", "E050": None, "E099": "rep"}
    change = AuditLog.objects.filter(action="employee.update", object_id=str(company.rep_a.pk))
    assert change.exists()


def test_an_unknown_role_is_refused_with_the_roles_there_are(company, admin):
    problems = refused(admin, [["E030", "", "", "超级销售"]], header=["工号", "姓名", "部门", "角色"])

    assert len(problems) == 1
    row_number, column, message = problems[0]
    assert (row_number, column) == (2, "角色")
    assert message.startswith("No role 超级销售; use one of: ")
    assert "Sales manager" in message
    assert Employee.objects.get(pk=company.rep_a.pk).role.code == "rep"
