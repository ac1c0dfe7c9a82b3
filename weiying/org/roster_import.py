"""The HR roster from a file (.xlsx or CSV) or from an HR system's API call: one validation
core, one way of applying it, all or nothing.

A record names an employee by number. A new number creates the employee; a known number
updates them: a new department is a transfer and a new position or level a promotion, both
effective on the record's effective date (today when empty), a new direct leader a change of
the reporting line, the status 离职 a departure (with the successor, if named, taking over
the leaver's customers and opportunities through the "employee.left" event).

Which fields a record changes: an empty cell (a column the file does not have, a field the
API record does not send or sends empty) leaves that field as it is; a single "-" (null in the
API) clears it: no leader, no phone… A field with a default goes back to it (employment type:
full-time; status: 在职); number, name and department cannot be cleared.

Departments are named by their path of names from the top of the tree, separated by "/"
(总部/华东分公司/上海一组); the top department's name may be left out (华东分公司/上海一组).

Steps:
1. Read every record and load, in a few queries, what they refer to (employees by number,
   departments by name path, payroll numbers, the current stretch of the HR history).
2. Check every record and the file as a whole: duplicates, unknown departments and leaders,
   loops in the reporting line, dates, formats. Any problem: a report of them all (row,
   column, what is wrong and what to do) and nothing written.
3. Otherwise apply everything in one transaction through the org services (each writes its
   own audit row and event): new employees (leaders before the people who report to them),
   profile changes, transfers, promotions, new leaders (top of the tree first, so the line
   never loops on the way), departures. A record that changes nothing writes nothing, so
   sending the same records twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from weiying.core import tree
from weiying.core.errors import DomainError, ValidationFailed
from weiying.core.permissions import require
from weiying.core.scope import visible_employees
from weiying.org import services
from weiying.org.choices import EmployeeStatus, EmploymentType
from weiying.org.models import Assignment, Department, Employee, Role
from weiying.org.selectors import visible_departments
from weiying.pipeline.imports import RowError, _bad_file, _map_header, read_rows

logger = logging.getLogger(__name__)

# Limitation: a roster is checked and applied in memory and in one request, one service call
# per change; rosters above this size are refused (split them by branch) until a background
# import exists.
MAX_ROWS = 20000
_CHUNK = 900

# Header aliases per field, in priority order (the first one present in the file wins); the
# first alias is the header of the downloadable template.
ROSTER_HEADERS: dict[str, tuple[str, ...]] = {
    "number": ("工号", "员工编号", "employee_number", "number"),
    "name": ("姓名", "name"),
    "department": ("部门", "department"),
    "position": ("职位", "岗位", "position"),
    "level": ("职级", "级别", "level"),
    "leader": ("上级工号", "直属上级工号", "leader_number", "leader"),
    "hire_date": ("入职日期", "hire_date"),
    "phone": ("手机", "手机号", "phone", "mobile"),
    "email": ("邮箱", "email"),
    "employment_type": ("用工类型", "employment_type"),
    "payroll_number": ("工资号", "payroll_number"),
    "status": ("状态", "在职状态", "status"),
    "leave_date": ("离职日期", "leave_date"),
    "successor": ("交接人工号", "successor_number", "successor"),
    "effective_date": ("生效日期", "effective_date"),
    "role": ("角色", "role"),
}
FIELDS = tuple(ROSTER_HEADERS)
_LIMITS = {"number": 32, "name": 64, "position": 64, "level": 16, "payroll_number": 32}
_STATUS = {
    "在职": EmployeeStatus.ACTIVE, "正式": EmployeeStatus.ACTIVE, "active": EmployeeStatus.ACTIVE,
    "试用": EmployeeStatus.PROBATION, "试用期": EmployeeStatus.PROBATION,
    "probation": EmployeeStatus.PROBATION,
    "离职": EmployeeStatus.LEFT, "left": EmployeeStatus.LEFT,
}
_EMPLOYMENT = {
    "全职": EmploymentType.FULL_TIME, "full_time": EmploymentType.FULL_TIME,
    "full-time": EmploymentType.FULL_TIME, "兼职": EmploymentType.PART_TIME,
    "part_time": EmploymentType.PART_TIME, "part-time": EmploymentType.PART_TIME,
    "外包": EmploymentType.AGENT, "外包代理": EmploymentType.AGENT, "代理": EmploymentType.AGENT,
    "代理人": EmploymentType.AGENT, "agent": EmploymentType.AGENT,
    "实习": EmploymentType.INTERN, "实习生": EmploymentType.INTERN,
    "intern": EmploymentType.INTERN,
}
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[T ]00:00(?::00)?)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SEPARATORS = re.compile(r"\s*[/／]\s*")
CLEAR = "-"


@dataclass
class RosterReport:
    """What a roster import did (or, with errors, why it did nothing)."""

    file_name: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    transferred: int = 0
    promoted: int = 0
    leaders_changed: int = 0
    left: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "transferred": self.transferred, "promoted": self.promoted,
                "leaders_changed": self.leaders_changed, "left": self.left,
                "unchanged": self.unchanged}

    def error_dicts(self) -> list[dict[str, Any]]:
        return [{"row": e.row, "column": e.column, "message": e.message} for e in self.errors]

    def errors_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([_("Row"), _("Column"), _("Problem")])
        for err in self.errors:
            writer.writerow([err.row, err.column, err.message])
        return out.getvalue()


@dataclass
class _Row:
    """One record being checked: the raw text and, once checked, what it asks for."""

    row: int
    values: dict[str, str]
    number: str = ""
    existing: Employee | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    clean: dict[str, Any] = field(default_factory=dict)
    department: Department | None = None
    leader: str | None = None  # None: keep; "": no leader; else the leader's number
    successor: str = ""
    on: dt.date | None = None
    skip: bool = False  # a former employee recorded as left again: nothing to do

    def has(self, name: str) -> bool:
        """The record says something about this field (a value, or "-" to clear it)."""
        return bool(self.values.get(name))

    def get(self, name: str) -> str:
        """The value; "" when the record says nothing or clears the field."""
        value = self.values.get(name, "")
        return "" if value == CLEAR else value

    def add(self, name: str, message: str) -> None:
        self.problems.append((name, message))


# --- Reading ---------------------------------------------------------------------------------
def read_file(source: Any) -> tuple[list[tuple[int, dict[str, str]]], dict[str, str]]:
    """The records of a roster file as (spreadsheet row number, {field: text}) and the
    columns as written in the file ({field: header}). File-level problems raise "bad_file"."""
    rows = read_rows(source)
    header = next(rows, None)
    if header is None or not any(header):
        raise _bad_file(_("The file is empty; the first row must hold the column names."))
    mapping = _map_header(header, ROSTER_HEADERS)
    if "number" not in mapping:
        raise _bad_file(
            _("The file has no employee number column; name the column %(names)s.")
            % {"names": " / ".join(ROSTER_HEADERS["number"][:3])}
        )
    columns = {name: header[i] for name, i in mapping.items()}
    records = []
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        if len(records) >= MAX_ROWS:
            raise _bad_file(
                _("The file has more than %(limit)s employees; split it (by branch, for "
                  "example) and import the parts one after the other.") % {"limit": MAX_ROWS}
            )
        width = len(cells)
        records.append((number, {name: (cells[i] if i < width else "").strip()
                                 for name, i in mapping.items()}))
    return records, columns


def records_from_api(items: Iterable[dict[str, Any]]) -> list[tuple[int, dict[str, str]]]:
    """API records ({field: value}, only the fields sent) as rows numbered from 1; null
    clears a field, like "-" in a file."""
    out = []
    for index, item in enumerate(items, start=1):
        values = {}
        for name, value in item.items():
            if name not in ROSTER_HEADERS:
                continue
            if value is None:
                values[name] = CLEAR
            elif isinstance(value, dt.date):
                values[name] = value.isoformat()
            else:
                values[name] = str(value).strip()
        out.append((index, values))
    return out


# --- Cleaning one value ----------------------------------------------------------------------
def parse_date(raw: str) -> dt.date:
    """2024-03-01, 2024/3/1, 2024.3.1, 2024年3月1日, 20240301 (or an Excel date cell)."""
    match = _DATE.match(raw) or _COMPACT_DATE.match(raw)
    if match is None:
        raise ValueError(raw)
    year, month, day = (int(g) for g in match.groups())
    return dt.date(year, month, day)


def _date(row: _Row, name: str) -> dt.date | None:
    raw = row.get(name)
    if not raw:
        return None
    try:
        return parse_date(raw)
    except ValueError:
        row.add(name, _("%(value)s is not a date; write it as 2024-03-01.") % {"value": raw})
        return None


def _text(row: _Row, name: str) -> str:
    value = row.get(name)
    limit = _LIMITS.get(name)
    if limit and len(value) > limit:
        row.add(name, _("Too long (%(limit)s characters at most); shorten it.")
                % {"limit": limit})
    return value


def _by_service(row: _Row, name: str, clean: Any) -> str:
    """A value cleaned by the org service's own check, its refusal kept as this row's
    problem (so the file is told exactly what the service would say)."""
    try:
        return clean(row.get(name))
    except ValidationFailed as exc:
        row.add(name, str(exc.message))
        return ""


def _choice(row: _Row, name: str, table: dict[str, str], default: str,
            message: str) -> str:
    raw = row.get(name)
    if not raw:
        return default
    value = table.get(raw.lower()) or table.get(raw)
    if value is None:
        row.add(name, message % {"value": raw})
        return default
    return value


def _name_path(raw: str) -> str:
    return "/".join(p for p in _SEPARATORS.split(raw.strip().strip("/／")) if p)


# --- Lookups ---------------------------------------------------------------------------------
class _Directory:
    """What the records refer to, loaded in a few queries."""

    def __init__(self, actor: Any, rows: list[_Row]) -> None:
        self.actor = actor
        numbers = {r.number for r in rows if r.number}
        numbers |= {r.get(k) for r in rows for k in ("leader", "successor") if r.get(k)}
        self.employees: dict[str, Employee] = {}
        self.visible: set[str] = set()
        listed = sorted(numbers)
        seen_ids = visible_employees(actor)
        for i in range(0, len(listed), _CHUNK):
            chunk = listed[i : i + _CHUNK]
            for employee in Employee.objects.filter(number__in=chunk):
                self.employees[employee.number] = employee
            self.visible.update(seen_ids.filter(number__in=chunk)
                                .values_list("number", flat=True))
        # Everyone above them on the reporting line (for loops through people not in the file).
        ids = {pk for e in self.employees.values() for pk in tree.ancestor_ids(e.path)}
        ids -= {e.pk for e in self.employees.values()}
        self.by_id: dict[int, Employee] = {e.pk: e for e in self.employees.values()}
        listed_ids = sorted(ids)
        for i in range(0, len(listed_ids), _CHUNK):
            for employee in Employee.objects.filter(pk__in=listed_ids[i : i + _CHUNK]).only(
                    "pk", "number", "leader_id", "path"):
                self.by_id[employee.pk] = employee
        # The reporting line as it is, by number, for the loop check.
        self.line: dict[str, str | None] = {}
        for employee in self.by_id.values():
            leader = self.by_id.get(employee.leader_id) if employee.leader_id else None
            self.line[employee.number] = leader.number if leader is not None else None
        # The day each employee's current stretch of the HR history began.
        existing = sorted(e.pk for e in self.employees.values())
        self.stretch_starts: dict[int, dt.date] = {}
        for i in range(0, len(existing), _CHUNK):
            self.stretch_starts.update(
                Assignment.objects.filter(employee_id__in=existing[i : i + _CHUNK],
                                          ends_on__isnull=True)
                .values_list("employee_id", "starts_on"))
        payrolls = sorted({r.get("payroll_number") for r in rows if r.get("payroll_number")})
        self.payroll_holders: dict[str, str] = {}
        for i in range(0, len(payrolls), _CHUNK):
            self.payroll_holders.update(
                Employee.objects.filter(payroll_number__in=payrolls[i : i + _CHUNK])
                .values_list("payroll_number", "number"))
        self._departments: dict[str, Department] | None = None
        self.roles: dict[str, Role] = {}
        if any(r.get("role") for r in rows):
            # A role by its code, its name, or a built-in role's name in Chinese or English.
            for role in Role.objects.order_by("pk"):
                spellings = [role.code, role.name, role.label]
                if role.is_builtin:
                    with translation.override("zh-hans"):
                        spellings.append(role.label)
                for spelling in spellings:
                    self.roles.setdefault(spelling.lower(), role)

    def departments(self) -> dict[str, Department]:
        """{name path: department} for the departments the actor may see, under both
        spellings (from the top, and without the top department's name)."""
        if self._departments is None:
            names = dict(Department.objects.values_list("pk", "name"))
            found: dict[str, Department] = {}
            short: dict[str, Department] = {}
            for department in visible_departments(self.actor):
                chain = [names[pk] for pk in tree.ancestor_ids(department.path)]
                found["/".join(chain)] = department
                if len(chain) > 1:
                    short.setdefault("/".join(chain[1:]), department)
            self._departments = {**short, **found}
        return self._departments


# --- Checking --------------------------------------------------------------------------------
def _check_row(row: _Row, lookups: _Directory, first_row: dict[str, int],
               first_payroll: dict[str, int]) -> None:
    """Everything about one record that needs no other record."""
    if not row.number or row.number == CLEAR:
        row.add("number", _("An employee number is required; fill it in."))
        return
    _text(row, "number")
    if row.number in first_row and first_row[row.number] != row.row:
        row.add("number", _("Employee number %(number)s also appears in row %(row)s; list "
                            "each employee once.")
                % {"number": row.number, "row": first_row[row.number]})
    existing = lookups.employees.get(row.number)
    if existing is not None and row.number not in lookups.visible:
        row.add("number", _("Employee number %(number)s belongs to someone outside the part "
                            "of the organisation you manage; leave the row out or ask an "
                            "administrator.") % {"number": row.number})
        return
    row.existing = existing
    status = _choice(row, "status", _STATUS, EmployeeStatus.ACTIVE,
                     _("Unknown status %(value)s; use 在职, 试用 or 离职."))
    if not row.has("status") and existing is not None:
        status = existing.status
    if existing is not None and not existing.is_active:
        if status == EmployeeStatus.LEFT:
            row.skip = True  # recorded already; a departure is recorded once
            return
        row.add("status", _("%(name)s (%(number)s) left on %(date)s; a former employee's "
                            "record stays as it was. A rehire gets a new employee number.")
                % {"name": existing.name, "number": existing.number,
                   "date": existing.leave_date.isoformat() if existing.leave_date else "?"})
        return
    is_new = existing is None
    clean = row.clean
    clean["status"] = status

    for name in ("name", "department"):
        if row.has(name) and not row.get(name):
            row.add(name, _("This cannot be cleared; enter a value or leave the cell empty to "
                            "keep it."))
        elif is_new and not row.has(name):
            row.add(name, _("A new employee needs this; fill it in."))
    if row.get("name"):
        clean["name"] = _text(row, "name")
    if row.get("department"):
        path = _name_path(row.get("department"))
        department = lookups.departments().get(path)
        if department is None:
            row.add("department", _(
                "No department %(path)s among those you manage. Write the path of names from "
                "the top, separated by \"/\" (like 总部/华东分公司/上海一组); check the spelling "
                "or create the department first.") % {"path": row.get("department")})
        elif not department.is_active:
            row.add("department", _("%(department)s is closed; pick an active department.")
                    % {"department": department.name})
        else:
            row.department = department
    for name in ("position", "level"):
        if row.has(name):
            clean[name] = _text(row, name)
    if row.has("phone"):
        clean["phone"] = _by_service(row, "phone", services._clean_phone)
    if row.has("email"):
        clean["email"] = _by_service(row, "email", services._clean_email)
    if row.has("employment_type"):
        clean["employment_type"] = _choice(
            row, "employment_type", _EMPLOYMENT, EmploymentType.FULL_TIME,
            _("Unknown employment type %(value)s; use 全职, 兼职, 外包代理 or 实习."))
    if row.has("role"):
        _check_role(row, lookups)
    if row.has("payroll_number"):
        payroll = _text(row, "payroll_number")
        clean["payroll_number"] = payroll
        if payroll:
            earlier = first_payroll.setdefault(payroll, row.row)
            holder = lookups.payroll_holders.get(payroll)
            if earlier != row.row:
                row.add("payroll_number", _("Payroll number %(payroll)s also appears in row "
                                            "%(row)s; each payroll number belongs to one "
                                            "employee.") % {"payroll": payroll, "row": earlier})
            elif holder is not None and holder != row.number:
                row.add("payroll_number", _("Payroll number %(payroll)s already belongs to "
                                            "employee %(number)s; check the number.")
                        % {"payroll": payroll, "number": holder})
    for name in ("hire_date", "leave_date", "effective_date"):
        if row.has(name):
            clean[name] = _date(row, name)
    if row.has("leader"):
        row.leader = row.get("leader")
        if row.leader == row.number:
            row.add("leader", _("An employee cannot be their own leader; enter their direct "
                                "leader's employee number, or \"-\" for none."))
    row.successor = row.get("successor")

    leaving = status == EmployeeStatus.LEFT
    if leaving and not clean.get("leave_date"):
        if "leave_date" not in [n for n, _m in row.problems]:
            row.add("leave_date", _("The status 离职 needs a leave date; fill it in."))
    if not leaving and clean.get("leave_date"):
        row.add("leave_date", _("A leave date goes with the status 离职; set the status or "
                                "clear the date."))
    if row.successor and not leaving:
        row.add("successor", _("A successor takes over from a leaver; set the status 离职 or "
                               "clear the successor."))
    if row.successor and row.successor == row.number:
        row.add("successor", _("A leaver cannot be their own successor; pick a colleague who "
                               "stays."))
    hire = clean.get("hire_date", existing.hire_date if existing else None)
    leave = clean.get("leave_date")
    if hire and leave and leave < hire:
        row.add("leave_date", _("The leave date %(leave)s is before the hire date %(hire)s; "
                                "enter a date on or after the hire date.")
                % {"leave": leave.isoformat(), "hire": hire.isoformat()})
    if existing is not None:
        _check_effective_date(row, lookups)


def _check_role(row: _Row, lookups: _Directory) -> None:
    """The role by its name or code; "-" takes the role away (the employee then sees no
    records)."""
    raw = row.get("role")
    if not raw:
        row.clean["role"] = None
        return
    role = lookups.roles.get(raw.lower())
    if role is None:
        names = sorted({r.label for r in lookups.roles.values()})
        row.add("role", _("No role %(value)s; use one of: %(roles)s (or its code).")
                % {"value": raw, "roles": "、".join(names)})
        return
    row.clean["role"] = role


def _check_effective_date(row: _Row, lookups: _Directory) -> None:
    """A transfer or promotion takes effect on the effective date (today when empty), which
    cannot be before the last change in the HR history."""
    employee = row.existing
    assert employee is not None
    moves = row.department is not None and row.department.pk != employee.department_id
    promotes = any(name in row.clean and row.clean[name] != getattr(employee, name)
                   for name in ("position", "level"))
    if not (moves or promotes):
        return
    on = row.clean.get("effective_date") or timezone.localdate()
    row.on = on
    starts = lookups.stretch_starts.get(employee.pk)
    if starts is not None and on < starts:
        row.add("effective_date", _(
            "%(name)s's last change took effect on %(date)s; a transfer or promotion cannot "
            "be dated before it. Enter %(date)s or a later effective date.")
            % {"name": employee.name, "date": starts.isoformat()})


def _check_references(rows: list[_Row], lookups: _Directory) -> None:
    """Leaders and successors: people in the file or current employees the actor may see,
    and a reporting line without loops once every record is applied."""
    in_file = {r.number: r for r in rows if r.number and not r.skip}

    def resolve(row: _Row, name: str, number: str) -> None:
        other = in_file.get(number)
        if other is not None:
            if other.clean.get("status") == EmployeeStatus.LEFT:
                row.add(name, _("%(number)s leaves in this file (row %(row)s); pick someone "
                                "who stays.") % {"number": number, "row": other.row})
            return
        employee = lookups.employees.get(number)
        if employee is None or number not in lookups.visible:
            row.add(name, _("No employee %(number)s in this file or among the people you "
                            "manage; check the number or add a row for them.")
                    % {"number": number})
        elif not employee.is_active:
            row.add(name, _("%(name)s (%(number)s) has left the company; pick a current "
                            "employee.") % {"name": employee.name, "number": number})

    for row in in_file.values():
        if row.leader:
            resolve(row, "leader", row.leader)
        if row.successor:
            resolve(row, "successor", row.successor)
    _check_loops(in_file, lookups)


def _final_leader(number: str, in_file: dict[str, _Row], lookups: _Directory) -> str | None:
    """Whom `number` reports to once the records are applied."""
    row = in_file.get(number)
    if row is not None and row.leader is not None:
        return row.leader or None
    return lookups.line.get(number)


def _check_loops(in_file: dict[str, _Row], lookups: _Directory) -> None:
    """Walk each record's reporting line as it will be; a walk that comes back to someone
    it passed is a loop, reported on every record of it. Also sets each record's depth in
    the new line (`clean["_depth"]`), by which leaders are applied before their reports."""
    depth: dict[str, int] = {}
    looped: set[str] = set()
    for start in in_file:
        trail: list[str] = []
        number: str | None = start
        while number is not None and number not in depth and number not in trail:
            trail.append(number)
            number = _final_leader(number, in_file, lookups)
        if number is not None and number in trail:
            loop = trail[trail.index(number):]
            shown = " → ".join([*loop, number])
            for member in loop:
                if member in in_file and member not in looped:
                    in_file[member].add("leader", _(
                        "The reporting line would loop: %(loop)s; give one of them another "
                        "direct leader.") % {"loop": shown})
                    looped.add(member)
                depth[member] = 0
            trail = trail[: trail.index(number)]
            base = 0
        else:
            base = depth.get(number, 0) if number is not None else 0
        for member in reversed(trail):
            base += 1
            depth.setdefault(member, base)
    for number, row in in_file.items():
        row.clean["_depth"] = depth.get(number, 0)


def validate(records: list[tuple[int, dict[str, str]]], *, actor: Any,
             columns: dict[str, str] | None = None) -> tuple[list[_Row], list[RowError]]:
    """Check every record; nothing is written. Returns the checked rows and the problems
    (each with the row number and the column as the source names it)."""
    rows = [_Row(row=n, values=v, number=v.get("number", "")) for n, v in records]
    lookups = _Directory(actor, rows)
    first_row: dict[str, int] = {}
    for row in rows:
        if row.number:
            first_row.setdefault(row.number, row.row)
    first_payroll: dict[str, int] = {}
    for row in rows:
        _check_row(row, lookups, first_row, first_payroll)
    _check_references(rows, lookups)
    errors = [RowError(row.row, _label(name, columns), message)
              for row in rows for name, message in row.problems]
    return rows, errors


def _label(name: str, columns: dict[str, str] | None) -> str:
    """The column as the source names it: the file's header (the template's for a column
    the file lacks), or the API's field name."""
    if columns is None:
        return name
    return columns.get(name) or ROSTER_HEADERS.get(name, (name,))[0]


# --- Applying --------------------------------------------------------------------------------
class _Refused(Exception):
    def __init__(self, row: _Row, exc: DomainError) -> None:
        super().__init__(str(exc.message))
        self.row = row
        self.exc = exc


def _profile_changes(row: _Row, employee: Employee) -> dict[str, Any]:
    names = ("name", "phone", "email", "hire_date", "employment_type", "payroll_number")
    changes = {name: row.clean[name] for name in names
               if name in row.clean and row.clean[name] != getattr(employee, name)}
    if "role" in row.clean:
        role = row.clean["role"]
        if (role.pk if role is not None else None) != employee.role_id:
            changes["role"] = role
    status = row.clean["status"]
    if status != EmployeeStatus.LEFT and status != employee.status:
        changes["status"] = status
    return changes


def _apply(rows: list[_Row], actor: Any, report: RosterReport) -> None:
    """Write what the checked rows ask for (inside the caller's transaction)."""
    todo = sorted((r for r in rows if not r.skip), key=lambda r: (r.clean["_depth"], r.row))
    by_number: dict[str, Employee] = {}

    def person(number: str) -> Employee:
        if number not in by_number:
            by_number[number] = Employee.objects.get(number=number)
        return by_number[number]

    touched: set[str] = set()
    for row in todo:  # 1. new employees, leaders first
        if row.existing is not None:
            continue
        clean = row.clean
        try:
            by_number[row.number] = services.create_employee(
                actor=actor, number=row.number, name=clean["name"], department=row.department,
                leader=person(row.leader) if row.leader else None,
                position=clean.get("position", ""), level=clean.get("level", ""),
                hire_date=clean.get("hire_date"), phone=clean.get("phone", ""),
                email=clean.get("email", ""),
                employment_type=clean.get("employment_type", EmploymentType.FULL_TIME),
                payroll_number=clean.get("payroll_number", ""), role=clean.get("role"),
                status=(EmployeeStatus.ACTIVE if clean["status"] == EmployeeStatus.LEFT
                        else clean["status"]),
                check=False,
            )
        except DomainError as exc:
            raise _Refused(row, exc) from None
        report.created += 1
        touched.add(row.number)

    for row in todo:  # 2. profiles, transfers, promotions of the people already here
        employee = row.existing
        if employee is None:
            continue
        try:
            changes = _profile_changes(row, employee)
            if changes:
                values = {f: getattr(employee, f) for f in services.EMPLOYEE_FIELDS}
                values.update(changes)
                employee = services.update_employee(actor=actor, employee=employee,
                                                    check=False, **values)
                report.updated += 1
                touched.add(row.number)
            if row.department is not None and row.department.pk != employee.department_id:
                employee = services.transfer_employee(actor=actor, employee=employee,
                                                      department=row.department, on=row.on,
                                                      check=False)
                report.transferred += 1
                touched.add(row.number)
            position = row.clean.get("position", employee.position)
            level = row.clean.get("level", employee.level)
            if (position, level) != (employee.position, employee.level):
                employee = services.promote_employee(actor=actor, employee=employee,
                                                     position=position, level=level,
                                                     on=row.on, check=False)
                report.promoted += 1
                touched.add(row.number)
        except DomainError as exc:
            raise _Refused(row, exc) from None
        by_number[row.number] = employee

    for row in todo:  # 3. new direct leaders, the top of the new line first
        if row.existing is None or row.leader is None:
            continue
        employee = person(row.number)
        employee.refresh_from_db()
        leader = person(row.leader) if row.leader else None
        if leader is not None:
            leader.refresh_from_db()  # its path moved if someone above it just moved
        if employee.leader_id == (leader.pk if leader else None):
            continue
        try:
            services.change_leader(actor=actor, employee=employee, leader=leader, check=False)
        except DomainError as exc:
            raise _Refused(row, exc) from None
        report.leaders_changed += 1
        touched.add(row.number)

    for row in todo:  # 4. departures, once everyone else is in place
        if row.clean["status"] != EmployeeStatus.LEFT:
            continue
        try:
            services.mark_left(actor=actor, employee=person(row.number),
                               leave_date=row.clean["leave_date"],
                               successor=person(row.successor) if row.successor else None,
                               check=False)
        except DomainError as exc:
            raise _Refused(row, exc) from None
        report.left += 1
        touched.add(row.number)
    report.unchanged = sum(1 for r in rows if r.number not in touched)


def apply_records(records: list[tuple[int, dict[str, str]]], *, actor: Any,
                  columns: dict[str, str] | None = None, file_name: str = "") -> RosterReport:
    """Check the records and, if every one is right, apply them all in one transaction;
    with any problem nothing is written and the report lists the problems. The one path for
    the file import and the HR API. Needs org.manage."""
    require(actor, "org.manage")
    started = time.monotonic()
    report = RosterReport(file_name=file_name, rows=len(records))
    try:
        with transaction.atomic():
            rows, errors = validate(records, actor=actor, columns=columns)
            if errors:
                report.errors = errors
            else:
                _apply(rows, actor, report)
    except _Refused as refused:
        # A rule only the service knows, or someone changed the roster meanwhile: the
        # transaction is undone and the row named.
        _zero(report)
        column = refused.exc.field if refused.exc.field in ROSTER_HEADERS else "number"
        report.errors = [RowError(refused.row.row, _label(column, columns),
                                  str(refused.exc.message))]
    except IntegrityError:
        _zero(report)
        report.errors = [RowError(0, "", _("Someone changed the roster while the records were "
                                           "being applied; send them again."))]
    report.seconds = time.monotonic() - started
    logger.info("roster import done",
                extra={f"roster_{k}": v for k, v in report.counts().items()}
                | {"errors": len(report.errors), "ms": int(report.seconds * 1000)})
    return report


def _zero(report: RosterReport) -> None:
    for name in report.counts():
        if name != "rows":
            setattr(report, name, 0)


def import_roster(source: Any, *, actor: Any, file_name: str = "") -> RosterReport:
    """Import a roster file (.xlsx or CSV; a path or an open binary file). File-level
    problems (empty, unreadable, no employee number column) raise ValidationFailed
    "bad_file"; row problems come back in the report, with nothing applied."""
    require(actor, "org.manage")
    if not file_name:
        file_name = Path(str(getattr(source, "name", source))).name
    records, columns = read_file(source)
    return apply_records(records, actor=actor, columns=columns, file_name=file_name)


# --- The template ----------------------------------------------------------------------------
def _help_lines() -> Iterator[tuple[str, str, str]]:
    yield "工号 / employee_number", _("Required"), _("A new number creates an employee; a "
                                                    "known one updates them.")
    yield "姓名 / name", _("Required for a new employee"), ""
    yield "部门 / department", _("Required for a new employee"), _(
        "The path of department names from the top, separated by \"/\": 总部/华东分公司/上海一组 "
        "(the top department's name may be left out). A new department is a transfer.")
    yield "职位 / position, 职级 / level", "", _("A new position or level is a promotion.")
    yield "上级工号 / leader_number", "", _("The direct leader's employee number: someone "
                                          "already on the roster or a row of the same file.")
    yield "入职日期 / hire_date, 离职日期 / leave_date, 生效日期 / effective_date", "", _(
        "Dates like 2024-03-01. A transfer or promotion takes effect on the effective date, "
        "today when empty.")
    yield "手机 / phone, 邮箱 / email", "", ""
    yield "用工类型 / employment_type", "", "全职 / 兼职 / 外包代理 / 实习"
    yield "工资号 / payroll_number", "", _("Optional; unique when given.")
    yield "角色 / role", "", _("The role's name or code (销售代表, 销售经理…): what the employee may do "
                               "and which records they see. \"-\" takes the role away.")
    yield "状态 / status", "", _("在职, 试用 or 离职 (离职 needs a leave date).")
    yield "交接人工号 / successor_number", "", _("For a leaver: who takes over their customers "
                                                "and opportunities.")
    yield "", "", _("An empty cell (or a column left out) keeps that field as it is; a single "
                    "\"-\" clears it. If any row has a problem, nothing is applied.")


def template_xlsx() -> bytes:
    """An empty roster file with the headers, and a second sheet explaining the columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "roster"
    sheet.append([aliases[0] for aliases in ROSTER_HEADERS.values()])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column in range(1, len(ROSTER_HEADERS) + 1):
        sheet.cell(row=1, column=column).number_format = "@"
    # Text cells: employee numbers like 0012 keep their zeros.
    for letter in ("A", "F", "G", "K", "N"):
        sheet.column_dimensions[letter].number_format = "@"
    guide = workbook.create_sheet(_("Columns"))
    guide.append([_("Column"), _("Required"), _("Meaning")])
    for line in _help_lines():
        guide.append(list(line))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
