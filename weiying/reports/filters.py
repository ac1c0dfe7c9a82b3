"""The slice every pipeline report reads: a period, a department subtree, a rep, a lead source
and a pipeline, parsed from a query string (desk pages and API alike) and checked against the
viewer's scope. A department or rep outside the scope is refused as if it did not exist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import tree
from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.scope import visible_employees
from weiying.customers.choices import Source
from weiying.org.models import Department, Employee
from weiying.org.selectors import visible_departments
from weiying.pipeline.models import Pipeline

# A period longer than this is refused: the reports are built for months, not decades.
MAX_DAYS = 3 * 366
# The source value that means "opportunities without a lead" in breakdowns and drill-downs.
NO_SOURCE = "none"


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    pipeline: Pipeline
    department: Department | None = None
    owner: Employee | None = None
    source: str = ""

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start 00:00, the day after end 00:00) in the company's time zone."""
        return local_midnight(self.start), local_midnight(self.end + dt.timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The period of the same length just before this one (month on month for a month)."""
        if self.start.day == 1 and (self.end + dt.timedelta(days=1)).day == 1:
            months = _months_between(self.start, self.end + dt.timedelta(days=1))
            start = add_months(self.start, -months)
            return replace(self, start=start, end=self.start - dt.timedelta(days=1))
        return replace(self, start=self.start - dt.timedelta(days=self.days),
                       end=self.start - dt.timedelta(days=1))

    def year_earlier(self) -> Filters:
        return replace(self, start=add_months(self.start, -12), end=add_months(self.end, -12))

    def query(self) -> dict[str, str]:
        """The filters as query-string parameters (for drill-down links)."""
        out = {"start": self.start.isoformat(), "end": self.end.isoformat(),
               "pipeline": str(self.pipeline.pk)}
        if self.department is not None:
            out["department"] = str(self.department.pk)
        if self.owner is not None:
            out["owner"] = str(self.owner.pk)
        if self.source:
            out["source"] = self.source
        return out

    def slice_q(self, *, department: str = "department", owner: str = "owner",
                source: str | None = "lead__source") -> Q:
        """The department / rep / source part of the filters on a model's own columns."""
        q = Q()
        if self.department is not None:
            q &= tree.subtree_q(f"{department}__path", self.department.path)
        if self.owner is not None:
            q &= Q(**{f"{owner}_id": self.owner.pk})
        if self.source and source:
            if self.source == NO_SOURCE:
                q &= Q(**{f"{source.split('__')[0]}__isnull": True})
            else:
                q &= Q(**{source: self.source})
        return q


def local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def _months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _date(value: Any, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(
            _("%(value)s is not a date; write it as YYYY-MM-DD.") % {"value": value},
            field=field) from None


def _pk(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return value
    if not str(value).isdigit():
        raise ValidationFailed(_("%(value)s is not an id.") % {"value": value}, field=field)
    return int(value)


def default_pipeline() -> Pipeline:
    pipeline = (Pipeline.objects.filter(is_default=True).order_by("pk").first()
                or Pipeline.objects.order_by("pk").first())
    if pipeline is None:
        raise ValidationFailed(_("There is no pipeline yet; create one in pipeline settings."),
                               field="pipeline")
    return pipeline


def parse(user: Any, data: Mapping[str, Any], *, default_start: dt.date | None = None,
          default_end: dt.date | None = None) -> Filters:
    """Filters from a query string. The period defaults to this month up to today; an
    unknown pipeline, a department or rep outside the viewer's scope, an unknown source or
    an end before the start is refused with a message naming the field."""
    today = timezone.localdate()
    start = _date(data.get("start"), "start") or default_start or month_start(today)
    end = _date(data.get("end"), "end") or default_end or today
    if end < start:
        raise ValidationFailed(_("The period ends before it starts; swap the dates."),
                               field="end")
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed(
            _("The period is longer than three years; choose a shorter one."), field="start")

    pipeline_id = _pk(data.get("pipeline"), "pipeline")
    if pipeline_id is None:
        pipeline = default_pipeline()
    else:
        found = Pipeline.objects.filter(pk=pipeline_id).first()
        if found is None:
            raise NotFound(_("There is no such pipeline."), field="pipeline")
        pipeline = found

    department = None
    department_id = _pk(data.get("department"), "department")
    if department_id is not None:
        department = visible_departments(user).filter(pk=department_id).first()
        if department is None:
            raise NotFound(_("This department does not exist or is outside what you may see."),
                           field="department")
    owner = None
    owner_id = _pk(data.get("owner"), "owner")
    if owner_id is not None:
        owner = visible_employees(user).filter(pk=owner_id).first()
        if owner is None:
            raise NotFound(_("This employee does not exist or is outside what you may see."),
                           field="owner")
    source = str(data.get("source") or "").strip()
    if source and source not in Source.values and source != NO_SOURCE:
        raise ValidationFailed(_("%(value)s is not a lead source.") % {"value": source},
                               field="source")
    return Filters(start=start, end=end, pipeline=pipeline, department=department,
                   owner=owner, source=source)


def teams_base(user: Any, filters: Filters) -> Department | None:
    """The department whose child departments are the "teams" of a breakdown: the one
    chosen, else the viewer's own (for a department or subtree scope), else the company's
    single root department. None when there is no such department."""
    if filters.department is not None:
        return filters.department
    return visible_departments(user).order_by("path").first()


def source_label(code: str) -> str:
    if not code or code == NO_SOURCE:
        return str(_("No lead (direct)"))
    return str(Source(code).label) if code in Source.values else code
