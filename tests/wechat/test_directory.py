import pytest
from django.utils import timezone

from tests.wechat.sync_world import api_calls, drain_all, replay_last, sandbox, snapshot
from weiying.core.models import AuditLog, DomainEvent
from weiying.org import services as org
from weiying.org.models import Department, Employee
from weiying.wechat import directory
from weiying.wechat.directory import full_sync_directory
from weiying.wechat.sandbox import simulate

pytestmark = pytest.mark.django_db
__all__ = ["sandbox"]

TREE = [
    {"id": 1, "name": "微营科技", "parentid": 0},
    {"id": 2, "name": "华东大区", "parentid": 1, "department_leader": ["boss_east"]},
    {"id": 3, "name": "上海一组", "parentid": 2},
    {"id": 4, "name": "华北大区", "parentid": 1},
]


def seed(state, users=None, departments=TREE):
    state.seed({"departments": departments, "users": users or [
        # The report comes before the leader: leaders are resolved once everyone exists.
        {"userid": "rep_li", "name": "李雷", "department": [3], "position": "销售",
         "direct_leader": ["boss_east"]},
        {"userid": "boss_east", "name": "周总", "department": [2], "position": "大区总监"},
        {"userid": "rep_han", "name": "韩梅梅", "department": [4, 3], "main_department": 3,
         "direct_leader": ["rep_li"]},
    ]}, mode="replace")


def test_a_full_sync_builds_the_pyramid_with_leaders_and_heads(sandbox):
    seed(sandbox)

    result = full_sync_directory()

    root = Department.objects.get(wecom_id="1")
    east = Department.objects.get(wecom_id="2")
    team = Department.objects.get(wecom_id="3")
    assert (root.parent, root.kind, east.parent, team.parent) == (None, "hq", root, east)
    assert team.path.startswith(east.path) and east.path.startswith(root.path)
    li, boss, han = (Employee.objects.get(wecom_userid=u)
                     for u in ("rep_li", "boss_east", "rep_han"))
    assert (li.name, li.position, li.department, li.leader) == ("李雷", "销售", team, boss)
    assert (han.department, han.leader, han.number) == (team, li, "rep_han")
    assert han.path.startswith(li.path) and li.path.startswith(boss.path)
    assert east.manager == boss
    assert result["departments_created"] == 4
    assert result["employees_created"] == 3
    assert result["leaders_changed"] == 2
    assert result["errors"] == 0
    assert result["api_calls"] == api_calls(sandbox) + 1  # + the token


def test_new_apps_get_no_phone_and_that_is_no_error(sandbox):
    seed(sandbox)

    result = full_sync_directory()

    li = Employee.objects.get(wecom_userid="rep_li")
    assert (li.phone, li.email, result["errors"]) == ("", "", 0)


def test_a_phone_an_old_app_sends_fills_only_an_empty_field(sandbox, monkeypatch):
    seed(sandbox)
    full_sync_directory()
    li, han = (Employee.objects.get(wecom_userid=u) for u in ("rep_li", "rep_han"))
    org.update_employee(actor=None, check=False, employee=li, name=li.name,
                        position=li.position, level="", role=None, phone="13900001111",
                        email="", city="", hire_date=None, status="active")
    fetch = directory.Directory.fetch_user

    def old_app(self, userid):  # an app set up before 2022 still gets mobile and email
        return {**fetch(self, userid), "mobile": "13700002222", "email": f"{userid}@corp.cn"}

    monkeypatch.setattr(directory.Directory, "fetch_user", old_app)

    full_sync_directory()

    li.refresh_from_db()
    han.refresh_from_db()
    assert (li.phone, li.email) == ("13900001111", "rep_li@corp.cn")  # HR's phone stays
    assert (han.phone, han.email) == ("13700002222", "rep_han@corp.cn")


def test_paging_reads_every_user_past_one_page(sandbox, monkeypatch):
    monkeypatch.setattr(directory, "LIST_ID_LIMIT", 50)
    users = [{"userid": f"u{i:03d}", "name": f"员工{i}", "department": [3]}
             for i in range(120)]
    seed(sandbox, users=users)

    result = full_sync_directory()

    assert Employee.objects.filter(wecom_userid__startswith="u").count() == 120
    assert result["users"] == 120
    assert sandbox.calls["/wecom/cgi-bin/user/list_id"] == 3
    assert sandbox.calls["/wecom/cgi-bin/user/get"] == 120


def test_leavers_are_marked_left_when_gone_or_status_5(sandbox):
    seed(sandbox)
    full_sync_directory()
    sandbox.users["rep_han"].status = 5
    del sandbox.users["rep_li"]

    result = full_sync_directory()

    assert result["employees_left"] == 2
    for userid in ("rep_han", "rep_li"):
        employee = Employee.objects.get(wecom_userid=userid)
        assert (employee.status, employee.leave_date) == ("left", timezone.localdate())
    assert Employee.objects.get(wecom_userid="boss_east").status == "active"


def test_a_second_full_sync_changes_nothing(sandbox):
    seed(sandbox)
    full_sync_directory()
    before = snapshot()

    result = full_sync_directory()

    assert snapshot() == before
    assert sum(v for k, v in result.items() if k not in ("departments", "users",
                                                           "api_calls")) == 0


def test_a_moved_and_renamed_tree_follows_wecom(sandbox):
    seed(sandbox)
    full_sync_directory()
    sandbox.departments[3].parentid = 4
    sandbox.departments[3].name = "北京一组"
    sandbox.users["rep_li"].position = "高级销售"

    result = full_sync_directory()

    team, north = Department.objects.get(wecom_id="3"), Department.objects.get(wecom_id="4")
    assert (team.name, team.parent) == ("北京一组", north)
    assert team.path.startswith(north.path)
    assert Employee.objects.get(wecom_userid="rep_li").position == "高级销售"
    assert (result["departments_moved"], result["departments_updated"]) == (1, 1)


# --- callbacks --------------------------------------------------------------------------------
def test_user_events_through_the_callback_create_move_and_remove_employees(sandbox):
    seed(sandbox)
    full_sync_directory()

    simulate.directory(sandbox, "create_user", {"userid": "rep_new", "name": "新人",
                                                "department": [4], "position": "销售",
                                                "direct_leader": ["boss_east"]})
    drain_all()
    new = Employee.objects.get(wecom_userid="rep_new")
    assert (new.name, new.department.wecom_id, new.leader.wecom_userid) == (
        "新人", "4", "boss_east")
    before = snapshot()
    replay_last()
    assert snapshot() == before

    simulate.directory(sandbox, "update_user", {"userid": "rep_new", "department": [3],
                                                "position": "组长"})
    drain_all()
    new.refresh_from_db()
    assert (new.department.wecom_id, new.position) == ("3", "组长")
    before = snapshot()
    replay_last()
    assert snapshot() == before

    simulate.directory(sandbox, "delete_user", {"userid": "rep_new"})
    drain_all()
    new.refresh_from_db()
    assert new.status == "left"
    before = snapshot()
    replay_last()
    assert snapshot() == before


def test_events_with_ids_only_are_completed_with_user_get(sandbox):
    seed(sandbox)
    full_sync_directory()
    sandbox.config.directory_events_ids_only = True

    simulate.directory(sandbox, "update_user", {"userid": "rep_li", "position": "主管",
                                                "direct_leader": []})
    simulate.directory(sandbox, "create_user", {"userid": "rep_x", "name": "小王",
                                                "department": [2]})
    drain_all()

    assert Employee.objects.get(wecom_userid="rep_li").position == "主管"
    assert Employee.objects.get(wecom_userid="rep_x").department.wecom_id == "2"
    assert sandbox.calls["/wecom/cgi-bin/user/get"] == 3 + 2


def test_a_renamed_user_id_keeps_the_employee(sandbox):
    seed(sandbox)
    full_sync_directory()
    li = Employee.objects.get(wecom_userid="rep_li")

    simulate.directory(sandbox, "update_user", {"userid": "rep_li", "new_userid": "lilei"})
    drain_all()

    li.refresh_from_db()
    assert li.wecom_userid == "lilei"
    assert Employee.objects.filter(name="李雷").count() == 1


def test_party_events_create_rename_move_and_close_departments(sandbox):
    seed(sandbox)
    full_sync_directory()

    simulate.directory(sandbox, "create_party", {"id": 9, "name": "深圳一组", "parentid": 2})
    drain_all()
    shenzhen = Department.objects.get(wecom_id="9")
    assert (shenzhen.name, shenzhen.parent.wecom_id) == ("深圳一组", "2")
    before = snapshot()
    replay_last()
    assert snapshot() == before

    sandbox.config.directory_events_ids_only = True
    simulate.directory(sandbox, "update_party", {"id": 9, "name": "华南一组", "parentid": 4})
    drain_all()
    shenzhen.refresh_from_db()
    assert (shenzhen.name, shenzhen.parent.wecom_id) == ("华南一组", "4")
    assert shenzhen.path.startswith(Department.objects.get(wecom_id="4").path)
    before = snapshot()
    replay_last()
    assert snapshot() == before

    simulate.directory(sandbox, "delete_party", {"id": 9})
    drain_all()
    shenzhen.refresh_from_db()
    assert shenzhen.is_active is False
    before = snapshot()
    replay_last()
    assert snapshot() == before


def test_sync_changes_are_audited_and_emitted_as_the_system(sandbox):
    seed(sandbox)

    full_sync_directory()

    created = AuditLog.objects.filter(action="employee.create")
    assert created.count() == 3
    assert set(created.values_list("actor_id", flat=True)) == {None}
    assert DomainEvent.objects.filter(name="employee.leader_changed").count() == 2
    assert DomainEvent.objects.filter(name="department.created").count() == 4


def test_the_org_manage_permission_is_needed_when_a_person_runs_it(sandbox, company):
    from tests.conftest import user_of
    from weiying.core.errors import PermissionDenied

    seed(sandbox)
    with pytest.raises(PermissionDenied):
        full_sync_directory(actor=user_of(company.rep_a))
    assert full_sync_directory(actor=user_of(company.admin))["employees_created"] == 3
