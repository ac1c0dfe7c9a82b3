"""The org pyramid from the WeCom directory: departments and employees, kept current by a
full sync and by the `change_contact` callbacks.

WeCom is the source of the tree and of who works here; HR keeps the rest. Departments are
matched by `Department.wecom_id`, employees by `Employee.wecom_userid`. Every write goes
through weiying.org.services as the system (`check=False`), so each change leaves the same
audit row and domain event a person's edit would. Since 2022 new apps get no mobile, email
or avatar: a missing one is not an error, and one WeCom does send fills only an empty field
(it never overwrites what HR entered).

What the sync decides:
- A WeCom department becomes a department (the root one headquarters, the others teams; the
  kind and the city are HR's after that); its name and parent follow WeCom; its first
  `department_leader` becomes its head.
- A user becomes an employee in their main department (`main_department`, else the first of
  `department`), with WeCom's name and position. Their direct leader is `direct_leader[0]`,
  set once every user exists; a user without one keeps the leader HR gave them.
- A user with status 5, or one no longer in the directory, is marked left.

Every step compares first and writes only a difference, so a replayed event or a second sync
changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from weiying.core.errors import DomainError
from weiying.org import services as org
from weiying.org.choices import DepartmentKind
from weiying.org.models import Department, Employee
from weiying.wechat import client, inbox
from weiying.wechat.choices import InboxSource

logger = logging.getLogger(__name__)

LEFT_STATUS = 5  # WeCom user status: 1 active, 2 disabled, 4 not activated, 5 left
LIST_ID_LIMIT = 10000  # user/list_id page size (WeCom's maximum)


def _number_for(userid: str) -> str:
    """An employee number for a user WeCom brings: the user id when it fits and is free."""
    if len(userid) <= 32 and not Employee.objects.filter(number=userid).exists():
        return userid
    return "WX" + hashlib.sha1(userid.encode()).hexdigest()[:16].upper()  # noqa: S324


def _ids(raw: Any) -> list[str]:
    """A list from the API (["a", "b"]) or from a callback field ("a,b")."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, list | tuple):
        return [str(v) for v in raw if str(v)]
    return [v.strip() for v in str(raw).split(",") if v.strip()]


class Directory:
    """One run against the directory: the client, what it has read, and what it changed."""

    def __init__(self, api: client.WeCom, actor: Any = None) -> None:
        self.api = api
        self.actor = actor
        self.counts: dict[str, int] = {
            "departments_created": 0, "departments_updated": 0, "departments_moved": 0,
            "departments_closed": 0, "employees_created": 0, "employees_updated": 0,
            "employees_transferred": 0, "leaders_changed": 0, "employees_left": 0,
            "errors": 0,
        }
        self._departments: dict[str, Department] | None = None

    # --- departments ----------------------------------------------------------------------
    def departments(self) -> dict[str, Department]:
        if self._departments is None:
            self._departments = {d.wecom_id: d for d in
                                 Department.objects.exclude(wecom_id="")}
        return self._departments

    def fetch_departments(self, wecom_id: str | None = None) -> list[dict[str, Any]]:
        params = {"id": wecom_id} if wecom_id else {}
        return list(self.api.get("/cgi-bin/department/list", **params).get("department", []))

    def upsert_departments(self, items: Iterable[dict[str, Any]]) -> None:
        """Create, rename and re-parent departments, parents before children."""
        by_id = {str(item["id"]): item for item in items}
        done: set[str] = set()

        def visit(wecom_id: str, trail: tuple[str, ...] = ()) -> None:
            if wecom_id in done or wecom_id in trail:
                return
            item = by_id[wecom_id]
            parent_id = str(item.get("parentid") or 0)
            if parent_id in by_id:
                visit(parent_id, (*trail, wecom_id))
            self.upsert_department(item)
            done.add(wecom_id)

        for wecom_id in sorted(by_id, key=lambda k: int(k) if k.isdigit() else 0):
            visit(wecom_id)

    def upsert_department(self, item: dict[str, Any]) -> Department | None:
        wecom_id = str(item["id"])
        parent_id = str(item.get("parentid") or 0)
        name = (item.get("name") or "").strip() or wecom_id
        parent = None
        if parent_id != "0":
            parent = self.departments().get(parent_id) or self.ensure_department(parent_id)
        current = self.departments().get(wecom_id)
        if current is None:
            department = org.create_department(
                actor=self.actor, name=name, parent=parent, check=False, wecom_id=wecom_id,
                kind=DepartmentKind.HEADQUARTERS if parent_id == "0" else DepartmentKind.TEAM,
            )
            self.departments()[wecom_id] = department
            self.counts["departments_created"] += 1
            return department
        if current.name != name[:128]:
            current = org.update_department(
                actor=self.actor, department=current, name=name, kind=current.kind,
                city=current.city, region=current.region, manager=current.manager,
                check=False)
            self.counts["departments_updated"] += 1
        if parent is not None and current.parent_id != parent.pk:
            try:
                current = org.move_department(actor=self.actor, department=current,
                                              parent=parent, check=False)
                self.counts["departments_moved"] += 1
                self._departments = None  # paths below it moved
            except DomainError as exc:
                self._error("department move refused", exc, wecom_id=wecom_id)
        self.departments()[wecom_id] = current
        return current

    def ensure_department(self, wecom_id: str) -> Department | None:
        """The department for a WeCom id, fetched (with its parents) when not yet here."""
        found = self.departments().get(str(wecom_id))
        if found is not None:
            return found
        items = [i for i in self.fetch_departments(str(wecom_id)) if str(i["id"]) == str(wecom_id)]
        if not items:
            return None
        return self.upsert_department(items[0])

    def set_heads(self, items: Iterable[dict[str, Any]]) -> None:
        """Each department's first `department_leader` becomes its head."""
        people = self.employees()
        for item in items:
            leaders = _ids(item.get("department_leader"))
            department = self.departments().get(str(item["id"]))
            head = people.get(leaders[0]) if leaders else None
            if department is None or head is None or not head.is_active:
                continue
            if department.manager_id == head.pk:
                continue
            org.update_department(
                actor=self.actor, department=department, name=department.name,
                kind=department.kind, city=department.city, region=department.region,
                manager=head, check=False)
            department.manager = head
            self.counts["departments_updated"] += 1

    def close_missing_departments(self, present: set[str]) -> None:
        # Deepest first: a child closes before its parent is checked for open children.
        gone = [d for wid, d in self.departments().items() if wid not in present and d.is_active]
        for department in sorted(gone, key=lambda d: -d.depth):
            self.close_department(department)

    def close_department(self, department: Department) -> None:
        try:
            closed = org.close_department(actor=self.actor, department=department, check=False)
        except DomainError as exc:
            self._error("department not closed", exc, department_id=department.pk)
            return
        if department.is_active and not closed.is_active:
            self.counts["departments_closed"] += 1
        self.departments()[department.wecom_id] = closed

    # --- employees ------------------------------------------------------------------------
    def employees(self) -> dict[str, Employee]:
        return {e.wecom_userid: e for e in
                Employee.objects.exclude(wecom_userid="").select_related("department")}

    def list_userids(self) -> list[str]:
        """Every user id in the directory, through user/list_id's cursor."""
        seen: dict[str, None] = {}
        cursor = ""
        while True:
            data = self.api.post("/cgi-bin/user/list_id", {"cursor": cursor,
                                                            "limit": LIST_ID_LIMIT})
            for row in data.get("dept_user", []):
                seen.setdefault(str(row["userid"]), None)
            cursor = data.get("next_cursor") or ""
            if not cursor:
                return list(seen)

    def fetch_user(self, userid: str) -> dict[str, Any] | None:
        try:
            return self.api.get("/cgi-bin/user/get", userid=userid)
        except client.ApiError as exc:
            if exc.code == 60111:  # userid not found: gone meanwhile
                return None
            raise

    def upsert_user(self, user: dict[str, Any]) -> Employee | None:
        """Create or update one employee from a user/get answer (or a full callback)."""
        userid = str(user["userid"])
        current = Employee.objects.select_related("department").filter(
            wecom_userid=userid).first()
        if current is None:
            current = self._adopt(userid)
        if int(user.get("status") or 1) == LEFT_STATUS:
            if current is not None:
                self.mark_left(current)
            return current
        departments = _ids(user.get("department"))
        main = str(user.get("main_department") or (departments[0] if departments else ""))
        department = self.ensure_department(main) if main else None
        name = (user.get("name") or "").strip() or userid
        position = (user.get("position") or "").strip()[:64]
        if current is None:
            if department is None:
                self._error("user without a known department", None, userid=userid)
                return None
            employee = org.create_employee(
                actor=self.actor, number=_number_for(userid), name=name[:64],
                department=department, position=position, check=False, wecom_userid=userid,
                **self._contact_fields(None, user),
            )
            self.counts["employees_created"] += 1
            return employee
        if not current.is_active:
            # Limitation: a leaver who shows up again in WeCom is not re-hired automatically;
            # HR records a rehire as a new employee.
            return current
        fields = {"name": name[:64], "position": position, **self._contact_fields(current, user)}
        if any(getattr(current, k) != v for k, v in fields.items()):
            values = {k: getattr(current, k) for k in org.EMPLOYEE_FIELDS}
            values.update(fields)
            current = org.update_employee(actor=self.actor, employee=current, check=False,
                                          **values)
            self.counts["employees_updated"] += 1
        if department is not None and current.department_id != department.pk:
            try:
                current = org.transfer_employee(actor=self.actor, employee=current,
                                                department=department, check=False)
                self.counts["employees_transferred"] += 1
            except DomainError as exc:
                self._error("employee transfer refused", exc, userid=userid)
        return current

    def _adopt(self, userid: str) -> Employee | None:
        """An employee HR entered before WeCom was connected, numbered like the user id and not
        yet tied to an account, is that user: tie them instead of creating a twin."""
        found = Employee.objects.filter(number=userid, wecom_userid="").first()
        if found is None:
            return None
        return org.set_wecom_userid(actor=self.actor, employee=found, wecom_userid=userid,
                                    check=False)

    @staticmethod
    def _contact_fields(current: Employee | None, user: dict[str, Any]) -> dict[str, str]:
        """Mobile and email only where WeCom sends one and HR has none (new apps get none)."""
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        from weiying.core.masking import normalise_phone

        out = {}
        phone = normalise_phone((user.get("mobile") or "").strip())
        if 7 <= len(phone) <= 20 and (current is None or not current.phone):
            out["phone"] = phone
        email = (user.get("email") or "").strip()
        if email and (current is None or not current.email):
            try:
                validate_email(email)
                out["email"] = email
            except ValidationError:
                pass  # not an address: leave the field to HR
        return out

    def set_leader(self, employee: Employee, leader_userid: str) -> None:
        leader = Employee.objects.filter(wecom_userid=leader_userid).first()
        employee.refresh_from_db()
        if leader is None or not leader.is_active or not employee.is_active:
            return
        if employee.leader_id == leader.pk or leader.pk == employee.pk:
            return
        try:
            org.change_leader(actor=self.actor, employee=employee, leader=leader, check=False)
            self.counts["leaders_changed"] += 1
        except DomainError as exc:  # a loop in WeCom's own data: keep HR's line
            self._error("leader refused", exc, userid=employee.wecom_userid)

    def mark_left(self, employee: Employee) -> None:
        employee.refresh_from_db()
        if not employee.is_active:
            return
        org.mark_left(actor=self.actor, employee=employee, leave_date=timezone.localdate(),
                      check=False)
        self.counts["employees_left"] += 1

    def _error(self, message: str, exc: Exception | None, **extra: Any) -> None:
        self.counts["errors"] += 1
        logger.warning("directory sync: %s", message,
                       extra={**extra, "error": str(exc) if exc else ""})


def full_sync_directory(*, actor: Any = None) -> dict[str, int]:
    """Bring departments and employees in line with the WeCom directory (app secret).

    1. department/list: create, rename, re-parent (parents first).
    2. user/list_id (cursor), then user/get per user: create or update each employee.
    3. Direct leaders and department heads, now that everyone exists.
    4. Employees tied to a user no longer listed are marked left; departments WeCom no longer
       has are closed once empty.

    Each step commits on its own: a sync interrupted half way is resumed by the next run.
    Returns the counts and `api_calls`.
    """
    if actor is not None:
        from weiying.core.permissions import require

        require(actor, "org.manage")
    started = time.monotonic()
    with client.WeCom() as api:
        run = Directory(api, actor)
        items = run.fetch_departments()
        with transaction.atomic():
            run.upsert_departments(items)
        users = []
        for userid in run.list_userids():
            user = run.fetch_user(userid)
            if user is not None:
                users.append(user)
        for user in users:
            with transaction.atomic():
                run.upsert_user(user)
        with transaction.atomic():
            people = run.employees()
            for user in users:
                leaders = _ids(user.get("direct_leader"))
                employee = people.get(str(user["userid"]))
                if leaders and employee is not None:
                    run.set_leader(employee, leaders[0])
            run.set_heads(items)
        listed = {str(u["userid"]) for u in users}
        with transaction.atomic():
            for employee in Employee.objects.exclude(wecom_userid="").exclude(
                    wecom_userid__in=listed).exclude(status="left"):
                run.mark_left(employee)
            run.close_missing_departments({str(i["id"]) for i in items})
        result = {**run.counts, "departments": len(items), "users": len(users),
                  "api_calls": api.calls}
    logger.info("directory sync done", extra={**result,
                                                "ms": int((time.monotonic() - started) * 1000)})
    return result


# --- Callbacks ------------------------------------------------------------------------------
_USER_FIELDS = {"Name": "name", "Position": "position", "Status": "status",
                "MainDepartment": "main_department", "Mobile": "mobile", "Email": "email"}


def _user_from_message(message: dict[str, Any]) -> dict[str, Any] | None:
    """The user as the callback describes it, or None when it carries ids only (apps set up
    since 2022) and user/get must be asked."""
    if not message.get("Name") or not message.get("Department"):
        return None
    user: dict[str, Any] = {"userid": message.get("NewUserID") or message["UserID"],
                            "department": _ids(message.get("Department"))}
    for key, field in _USER_FIELDS.items():
        if message.get(key) not in (None, ""):
            user[field] = message[key]
    if "DirectLeader" in message:
        user["direct_leader"] = _ids(message.get("DirectLeader"))
    return user


def handle_change_contact(row: Any, message: dict[str, Any]) -> str:
    change = message.get("ChangeType", "")
    with client.WeCom() as api:
        run = Directory(api)
        if change in ("create_user", "update_user"):
            userid = str(message.get("UserID") or "")
            new_userid = str(message.get("NewUserID") or "")
            if new_userid and new_userid != userid:
                renamed = Employee.objects.filter(wecom_userid=userid).first()
                if renamed is not None:
                    org.set_wecom_userid(actor=None, employee=renamed,
                                         wecom_userid=new_userid, check=False)
                userid = new_userid
            user = _user_from_message(message) or run.fetch_user(userid)
            if user is None:
                return "user not found"
            employee = run.upsert_user(user)
            leaders = _ids(user.get("direct_leader"))
            if employee is not None and leaders:
                run.set_leader(employee, leaders[0])
        elif change == "delete_user":
            # Limitation: a deletion in WeCom that arrives before HR records the leave with a
            # successor records it without one; the hand-over is then a manager's job.
            employee = Employee.objects.filter(wecom_userid=message.get("UserID", "")).first()
            if employee is not None:
                run.mark_left(employee)
        elif change in ("create_party", "update_party"):
            wecom_id = str(message.get("Id") or "")
            if message.get("Name") and message.get("ParentId") not in (None, ""):
                item = {"id": wecom_id, "name": message["Name"],
                        "parentid": message["ParentId"]}
            else:
                found = [i for i in run.fetch_departments(wecom_id) if str(i["id"]) == wecom_id]
                if not found:
                    return "department not found"
                item = found[0]
            run.upsert_department(item)
        elif change == "delete_party":
            department = Department.objects.filter(wecom_id=str(message.get("Id") or "")).first()
            if department is not None:
                run.close_department(department)
        else:
            return f"ignored {change}"
    return ", ".join(f"{k}={v}" for k, v in run.counts.items() if v) or "no change"


for _source in (InboxSource.WECOM_CONTACTS, InboxSource.WECOM):
    inbox.handles(_source, "event:change_contact")(handle_change_contact)
