from django.db import models
from django.utils.translation import gettext_lazy as _


class DataScope(models.TextChoices):
    NONE = "none", _("Nothing")
    SELF = "self", _("Own records")
    LINE = "line", _("Own and reporting line")
    DEPARTMENT = "department", _("Own department")
    SUBTREE = "subtree", _("Department and everything below it")
    ALL = "all", _("Everything")


class DepartmentKind(models.TextChoices):
    HEADQUARTERS = "hq", _("Headquarters")
    BRANCH = "branch", _("Branch")
    REGION = "region", _("Region")
    AREA = "area", _("Area")
    TEAM = "team", _("Team")
    OTHER = "other", _("Department")


class EmployeeStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PROBATION = "probation", _("On probation")
    LEFT = "left", _("Left")


class EmploymentType(models.TextChoices):
    """How a person works for the company; commission rules may differ by it."""

    FULL_TIME = "full_time", _("Full-time")
    PART_TIME = "part_time", _("Part-time")
    AGENT = "agent", _("Outsourced agent")
    INTERN = "intern", _("Intern")
