from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from weiying.core.scope import ScopeRule
from weiying.org.choices import DataScope, DepartmentKind, EmployeeStatus, EmploymentType


class Company(models.Model):
    """The company that runs this installation (one per installation)."""

    name = models.CharField(_("name"), max_length=128)
    short_name = models.CharField(_("short name"), max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    """A node of the sales pyramid: headquarters, branch, region, team… of any depth.

    `path` is the materialised path (see weiying.core.tree); it is maintained by
    org.services and never edited by hand.
    """

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="departments")
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children",
        verbose_name=_("parent department"),
    )
    name = models.CharField(_("name"), max_length=128)
    kind = models.CharField(
        _("kind"), max_length=16, choices=DepartmentKind.choices, default=DepartmentKind.TEAM
    )
    city = models.CharField(_("city"), max_length=64, blank=True)
    region = models.CharField(_("region"), max_length=64, blank=True)
    path = models.CharField(max_length=255, unique=True, editable=False)
    depth = models.PositiveSmallIntegerField(default=1, editable=False)
    manager = models.ForeignKey(
        "Employee", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("head"),
    )
    wecom_id = models.CharField(_("WeCom department id"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name


class Role(models.Model):
    """A set of permissions with a data scope. Built-in roles are seeded; custom ones added."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    data_scope = models.CharField(
        _("data scope"), max_length=16, choices=DataScope.choices, default=DataScope.NONE
    )
    permissions = models.JSONField(_("permissions"), default=list, blank=True)
    is_builtin = models.BooleanField(_("built in"), default=False)

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The name to show: a built-in role's name in the reader's language, a custom role's
        as its administrator wrote it."""
        return gettext(self.name) if self.is_builtin else self.name


class Employee(models.Model):
    """A person on the HR roster. `path` is the reporting line: the chain of direct leaders."""

    number = models.CharField(_("employee number"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="employees",
        verbose_name=_("department"),
    )
    position = models.CharField(_("position"), max_length=64, blank=True)
    level = models.CharField(_("level"), max_length=16, blank=True)
    leader = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reports",
        verbose_name=_("direct leader"),
    )
    path = models.CharField(max_length=255, unique=True, editable=False)
    # The department's path, copied here so "everyone in this subtree" is one range on an
    # index of this table (no join); org.services keeps it in step on transfers and moves.
    department_path = models.CharField(max_length=255, editable=False, default="")
    hire_date = models.DateField(_("hire date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=EmployeeStatus.choices, default=EmployeeStatus.ACTIVE
    )
    leave_date = models.DateField(_("leave date"), null=True, blank=True)
    phone = models.CharField(_("mobile"), max_length=20, blank=True)
    email = models.EmailField(_("email"), blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="employee", verbose_name=_("login"),
    )
    role = models.ForeignKey(
        Role, on_delete=models.PROTECT, null=True, blank=True, related_name="employees",
        verbose_name=_("role"),
    )
    wecom_userid = models.CharField(_("WeCom user id"), max_length=64, blank=True, db_index=True)
    # What commissions and payroll need: how the person is employed, and the number payroll
    # knows them by (工资号; optional, unique when given).
    employment_type = models.CharField(
        _("employment type"), max_length=16, choices=EmploymentType.choices,
        default=EmploymentType.FULL_TIME,
    )
    payroll_number = models.CharField(_("payroll number"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("employee")
        verbose_name_plural = _("employees")
        constraints = [
            models.UniqueConstraint(fields=["payroll_number"], condition=~models.Q(
                payroll_number=""), name="employee_payroll_number_unique"),
        ]
        indexes = [
            models.Index(fields=["department", "status"], name="employee_dept_status_idx"),
            models.Index(fields=["department_path", "id"], name="employee_dept_path_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"

    @property
    def is_active(self) -> bool:
        return self.status != EmployeeStatus.LEFT


class Assignment(models.Model):
    """One stretch of an employee's career: the department, position and level they held from
    `starts_on` until the day before `ends_on` (open while current). An employee's stretches
    cover every day without gap or overlap, the first reaching back to the beginning of
    records, so any fact dated any day finds the department it belongs to (weiying.org.history
    keeps this true; the performance roll-ups attribute by it)."""

    scope = ScopeRule(owner="employee", department="department", follows_owner=False)

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="assignments",
                                 verbose_name=_("employee"))
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("department"))
    position = models.CharField(_("position"), max_length=64, blank=True)
    level = models.CharField(_("level"), max_length=16, blank=True)
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until (exclusive)"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["employee", "starts_on"]
        constraints = [
            models.UniqueConstraint(fields=["employee", "starts_on"],
                                    name="assignment_employee_start_unique"),
        ]
        indexes = [models.Index(fields=["department", "starts_on"],
                                name="assignment_dept_idx")]

    def __str__(self) -> str:
        return f"{self.employee_id}@{self.department_id} {self.starts_on}…{self.ends_on or ''}"
