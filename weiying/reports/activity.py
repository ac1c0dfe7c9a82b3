"""Sales activity, read from the pipeline's records through the data scope:

- follow-ups per rep per day of a month (a matrix; reps paged by name, totals over the whole
  slice), a rep being everyone in the viewer's scope and the slice who was on the roster in
  the month (not left before it);
- the response time of leads assigned in the period, from assignment to the first
  follow-up (Lead.first_response_seconds), in buckets: under 5 minutes, 5–30 minutes,
  30 minutes–2 hours, 2–24 hours, over 24 hours, and never answered;
- neglected customers: owned customers (not in the shared pool, not merged) whose last
  follow-up is more than N days ago, or who never had one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core import tree
from weiying.core.errors import ValidationFailed
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Employee
from weiying.pipeline.models import FollowUp, Lead
from weiying.reports.filters import NO_SOURCE, Filters, add_months, local_midnight
from weiying.reports.funnel import _half_up, rate

REPS_PER_PAGE = 50
NEGLECT_DAYS = 30
# (key, label, lower bound in seconds inclusive, upper bound exclusive)
BUCKETS = [
    ("lt5m", gettext_lazy("Under 5 minutes"), 0, 300),
    ("5to30m", gettext_lazy("5–30 minutes"), 300, 1800),
    ("30mto2h", gettext_lazy("30 minutes–2 hours"), 1800, 7200),
    ("2to24h", gettext_lazy("2–24 hours"), 7200, 86400),
    ("gt24h", gettext_lazy("Over 24 hours"), 86400, None),
]


# --- follow-ups per rep per day -------------------------------------------------------------
@dataclass
class RepRow:
    employee: Employee
    days: list[int]
    total: int = 0


@dataclass
class Matrix:
    month: dt.date
    days: list[dt.date]
    rows: list[RepRow]
    day_totals: list[int]
    total: int
    reps: int  # in the whole slice
    page: int
    pages: int


def parse_month(value: Any, today: dt.date | None = None) -> dt.date:
    """The first day of a "YYYY-MM" month; this month when empty."""
    if not value:
        return (today or timezone.localdate()).replace(day=1)
    try:
        year, month = (int(p) for p in str(value).split("-"))
        return dt.date(year, month, 1)
    except (TypeError, ValueError):
        raise ValidationFailed(_("%(value)s is not a month; write it as YYYY-MM.")
                               % {"value": value}, field="month") from None


def _reps(user: Any, filters: Filters, month: dt.date) -> QuerySet[Employee]:
    qs = visible_employees(user)
    if filters.department is not None:
        qs = qs.filter(tree.subtree_q("department_path", filters.department.path))
    if filters.owner is not None:
        qs = qs.filter(pk=filters.owner.pk)
    return qs.exclude(status=EmployeeStatus.LEFT, leave_date__lt=month).order_by("name", "pk")


def _followups(user: Any, filters: Filters) -> QuerySet[FollowUp]:
    return scoped(FollowUp.objects.all(), user).filter(
        filters.slice_q(department="owner__department", source=None)).order_by()


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def followup_matrix(user: Any, filters: Filters, month: dt.date, *, page: int = 1,
                    per_page: int = REPS_PER_PAGE) -> Matrix:
    """One page of reps × the days of the month. Three queries: the page of reps, their
    counts by day, and the whole slice's counts by day."""
    end = add_months(month, 1)
    days = [month + dt.timedelta(days=i) for i in range((end - month).days)]
    reps = _reps(user, filters, month)
    count = reps.count()
    pages = max(1, -(-count // per_page))
    page = min(max(1, page), pages)
    people = list(reps[(page - 1) * per_page: page * per_page])
    lo, hi = local_midnight(month), local_midnight(end)
    in_month = _followups(user, filters).filter(at__gte=lo, at__lt=hi)
    cells: dict[tuple[int, dt.date], int] = {}
    for row in (in_month.filter(owner__in=[p.pk for p in people]).annotate(d=TruncDay("at"))
                .values("owner_id", "d").annotate(n=Count("id"))):
        cells[(row["owner_id"], _day(row["d"]))] = row["n"]
    rows = []
    for person in people:
        counts = [cells.get((person.pk, d), 0) for d in days]
        rows.append(RepRow(employee=person, days=counts, total=sum(counts)))
    by_day = {_day(r["d"]): r["n"] for r in in_month.filter(owner__in=reps.values("pk"))
              .annotate(d=TruncDay("at")).values("d").annotate(n=Count("id"))}
    day_totals = [by_day.get(d, 0) for d in days]
    return Matrix(month=month, days=days, rows=rows, day_totals=day_totals,
                  total=sum(day_totals), reps=count, page=page, pages=pages)


def all_rep_rows(user: Any, filters: Filters, month: dt.date) -> tuple[list[dt.date],
                                                                       list[RepRow]]:
    """Every rep of the slice (for the export): one query for the people, one for counts."""
    matrix = followup_matrix(user, filters, month, page=1, per_page=10**9)
    return matrix.days, matrix.rows


# --- response time --------------------------------------------------------------------------
@dataclass
class Bucket:
    key: str
    label: str
    count: int = 0
    share: Any = None


@dataclass
class ResponseTimes:
    assigned: int
    answered: int
    buckets: list[Bucket] = field(default_factory=list)
    average_seconds: int | None = None


def _leads(user: Any, filters: Filters) -> QuerySet[Lead]:
    lo, hi = filters.bounds
    qs = scoped(Lead.objects.all(), user).filter(assigned_at__gte=lo, assigned_at__lt=hi)
    if filters.source == NO_SOURCE:
        return qs.none()  # every lead has a source
    return qs.filter(filters.slice_q(source="source")).order_by()


def bucket_q(key: str) -> Q:
    """The leads of one response-time bucket ("never": no first response yet)."""
    if key == "never":
        return Q(first_response_seconds__isnull=True)
    for name, _label, low, high in BUCKETS:
        if name == key:
            q = Q(first_response_seconds__gte=low)
            return q & Q(first_response_seconds__lt=high) if high is not None else q
    raise ValidationFailed(_("Unknown response-time bucket."), field="bucket")


def response_times(user: Any, filters: Filters) -> ResponseTimes:
    """The leads assigned in the period by how soon they were first followed up: one
    conditional aggregate."""
    keys = [b[0] for b in BUCKETS] + ["never"]
    sums = _leads(user, filters).aggregate(
        total=Count("id"), seconds=Sum("first_response_seconds"),
        **{k: Count("id", filter=bucket_q(k)) for k in keys})
    total = sums["total"]
    labels = {b[0]: b[1] for b in BUCKETS} | {"never": gettext_lazy("Never answered")}
    answered = total - sums["never"]
    out = ResponseTimes(assigned=total, answered=answered)
    out.buckets = [Bucket(key=k, label=str(labels[k]), count=sums[k],
                          share=rate(sums[k], total)) for k in keys]
    if answered:
        out.average_seconds = _half_up(sums["seconds"] / answered)
    return out


def response_leads(user: Any, filters: Filters, bucket: str) -> QuerySet[Lead]:
    """The leads behind one bucket (drill-down)."""
    return _leads(user, filters).filter(bucket_q(bucket)).select_related("owner")


# --- neglected customers --------------------------------------------------------------------
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NEGLECT_SORTS = {
    "last": ["last_key", "id"], "-last": ["-last_key", "-id"],
    "name": ["name", "id"], "-name": ["-name", "-id"],
}


def parse_days(value: Any) -> int:
    if value in (None, ""):
        return NEGLECT_DAYS
    if not str(value).isdigit() or not 1 <= int(value) <= 3650:
        raise ValidationFailed(_("Give the days without a follow-up as a whole number from 1 "
                                 "to 3650."), field="days")
    return int(value)


def neglected_customers(user: Any, filters: Filters, *, days: int = NEGLECT_DAYS,
                        now: dt.datetime | None = None) -> QuerySet[Customer]:
    """Owned customers whose last follow-up is more than `days` days ago (or none)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=days)
    qs = scoped(Customer.objects.all(), user).filter(
        owner__isnull=False, in_pool=False, merged_into__isnull=True)
    if filters.source == NO_SOURCE:
        qs = qs.none()
    qs = qs.filter(filters.slice_q(source="source"))
    return (qs.filter(Q(last_followup_at__isnull=True) | Q(last_followup_at__lt=cutoff))
            .annotate(last_key=Coalesce("last_followup_at", Value(NEVER)))
            .select_related("owner"))
