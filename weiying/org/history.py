"""The HR history: which department (position, level) each employee held on each day.

Every employee has stretches (`Assignment`) that cover all days, without gap or overlap:
the first reaches back to `BEGINNING`, the last is open. A transfer or a promotion effective
on a day closes the current stretch the day before and opens one from that day. Facts (a
follow-up, a signing, a receipt) are attributed to the department of the stretch holding their
day, so a department's figures keep the people who worked in it when the work was done.

Called by weiying.org.services inside their transactions (which write the audit rows).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

from weiying.core.errors import ValidationFailed
from weiying.org.models import Assignment, Employee

# Where the first stretch of everyone starts: facts recorded before a hire date (history
# imported from an older CRM) still belong to the department the employee first joined.
BEGINNING = dt.date(1900, 1, 1)


def current(employee: Employee) -> Assignment | None:
    return Assignment.objects.filter(employee=employee, ends_on__isnull=True).first()


def open_first(employee: Employee, *, reason: str = "join") -> Assignment:
    """The first stretch of a new employee (covering everything before them too)."""
    return Assignment.objects.create(
        employee=employee, department_id=employee.department_id, position=employee.position,
        level=employee.level, starts_on=BEGINNING, reason=reason,
    )


def split(employee: Employee, *, on: dt.date, reason: str, **changes: Any) -> Assignment:
    """From `on`, the employee holds `changes` (department, position, level) on top of what
    they held; returns the new current stretch. A change effective on the day the current
    stretch began rewrites that stretch instead (a same-day correction)."""
    row = current(employee) or open_first(employee)
    if on < row.starts_on:
        raise ValidationFailed(
            _("%(name)s's last change took effect on %(date)s; a later change cannot be dated "
              "before it. Enter %(date)s or a later date.")
            % {"name": employee.name, "date": row.starts_on.isoformat()},
            field="on",
        )
    if on == row.starts_on:
        for field, value in changes.items():
            setattr(row, field, value)
        row.reason = reason
        row.save()
        return row
    Assignment.objects.filter(pk=row.pk).update(ends_on=on)
    values = {"department_id": row.department_id, "position": row.position,
              "level": row.level}
    values.update({("department_id" if k == "department" else k):
                   (v.pk if k == "department" else v) for k, v in changes.items()})
    return Assignment.objects.create(employee=employee, starts_on=on, reason=reason, **values)


def department_on(employee_id: int, day: dt.date) -> int | None:
    row = (Assignment.objects.filter(employee_id=employee_id, starts_on__lte=day)
           .order_by("-starts_on").values_list("department_id", flat=True).first())
    return row


def ensure_all() -> int:
    """Open a first stretch for every employee who has none (employees written in bulk by an
    import or the demo generator); one INSERT … SELECT. Returns how many were opened."""
    table = Assignment._meta.db_table
    employee = Employee._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (employee_id, department_id, position, level, starts_on, "
            f"ends_on, reason) SELECT e.id, e.department_id, e.position, e.level, %s, NULL, "
            f"'join' FROM {employee} e WHERE NOT EXISTS (SELECT 1 FROM {table} a "
            f"WHERE a.employee_id = e.id)",
            [BEGINNING],
        )
        return cursor.rowcount
