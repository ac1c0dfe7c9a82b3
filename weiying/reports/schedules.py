"""Scheduled reports: a dashboard's headline figures pushed to WeCom as a text card, daily or
weekly, at an hour of the company's day (Asia/Shanghai).

A schedule (reports.ReportSchedule) reaches one employee or every department head of a level.
Each recipient's card is computed as that recipient: their own role's figures over their own
scope, never the scope of whoever set the schedule up. The hourly job (tasks_schedules) sends
every schedule's latest due slot once: the schedule row is locked while its cards are written,
`last_slot` moves in the same transaction, and each card's outbox key names the schedule, the
slot and the recipient, so a second run, a second worker or a replay writes nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, override

from weiying.core import audit
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.core.permissions import has_perm, require
from weiying.core.scope import visible_employees
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Department, Employee
from weiying.performance.selectors import Period
from weiying.reports import dashboards
from weiying.reports.models import ReportSchedule, ScheduleFrequency

logger = logging.getLogger(__name__)

# What a schedule sends: a dashboard (the recipient's own, or a role's when the recipient may
# open it) or a report page; a report page's card carries the recipient's dashboard figures
# and links to the page.
REPORTS: dict[str, tuple[Any, str]] = {
    "dashboard": (gettext_lazy("Own dashboard"), "reports:dashboard"),
    **{role: (label, "reports:dashboard_role") for role, label in
       dashboards.ROLE_LABELS.items()},
    "funnel": (gettext_lazy("Funnel"), "reports:funnel"),
    "forecast": (gettext_lazy("Forecast"), "reports:forecast"),
    "channels": (gettext_lazy("Channel economics"), "reports:channels"),
    "activity": (gettext_lazy("Activity"), "reports:activity"),
    "customer_value": (gettext_lazy("Customer value"), "reports:customer_value"),
}
WEEKDAYS = [gettext_lazy("Monday"), gettext_lazy("Tuesday"), gettext_lazy("Wednesday"),
            gettext_lazy("Thursday"), gettext_lazy("Friday"), gettext_lazy("Saturday"),
            gettext_lazy("Sunday")]
FIGURES_ON_CARD = 4
OUTBOX_KIND = "report_schedule"


# --- when ----------------------------------------------------------------------------------------
def latest_slot(schedule: ReportSchedule, now: dt.datetime) -> dt.datetime:
    """The last moment at or before `now` the schedule falls due, in the company's zone."""
    local = timezone.localtime(now)
    slot = local.replace(hour=schedule.hour, minute=0, second=0, microsecond=0)
    if slot > local:
        slot -= dt.timedelta(days=1)
    if schedule.frequency == ScheduleFrequency.WEEKLY:
        slot -= dt.timedelta(days=(slot.weekday() - (schedule.weekday or 0)) % 7)
    # Rebuild from the wall-clock day: a fixed offset carried through timedelta arithmetic
    # would be wrong across a zone's offset change.
    return dt.datetime(slot.year, slot.month, slot.day, schedule.hour,
                       tzinfo=timezone.get_current_timezone())


def due_slot(schedule: ReportSchedule, now: dt.datetime) -> dt.datetime | None:
    """The slot to send now, or None: inactive, already sent, or not yet due since the
    schedule was made (a schedule made at 10:00 for 09:00 starts tomorrow)."""
    if not schedule.is_active:
        return None
    slot = latest_slot(schedule, now)
    if slot < schedule.created_at:
        return None
    if schedule.last_slot is not None and slot <= schedule.last_slot:
        return None
    return slot


def report_period(schedule: ReportSchedule, slot: dt.datetime) -> Period:
    """A daily card: the month of the day before, to that day's end (the month on record).
    A weekly card: the seven days that ended the day before."""
    yesterday = timezone.localtime(slot).date() - dt.timedelta(days=1)
    if schedule.frequency == ScheduleFrequency.WEEKLY:
        return Period(yesterday - dt.timedelta(days=6), yesterday)
    return Period.of(yesterday)


# --- who -----------------------------------------------------------------------------------------
def recipients(schedule: ReportSchedule) -> list[Employee]:
    if schedule.recipient_id is not None:
        return [schedule.recipient]
    heads = Department.objects.filter(manager__isnull=False, is_active=True).values(
        "manager_id")
    return list(Employee.objects.filter(level=schedule.recipient_level, pk__in=heads)
                .exclude(status=EmployeeStatus.LEFT).order_by("pk"))


def _user_of(employee: Employee) -> Any:
    """The recipient's login, fresh (no role or scope cached from another recipient)."""
    if employee.user_id is None:
        return None
    return get_user_model().objects.filter(pk=employee.user_id, is_active=True).first()


# --- what ----------------------------------------------------------------------------------------
def role_of_card(schedule: ReportSchedule, user: Any) -> str:
    """The dashboard whose figures the card carries: the one named when the recipient may
    open it, else the recipient's own."""
    if schedule.report in dashboards.ROLES and schedule.report in dashboards.roles_for(user):
        return schedule.report
    return dashboards.role_for(user)


def card(schedule: ReportSchedule, employee: Employee, slot: dt.datetime) -> dict[str, Any] | None:
    """The text card for one recipient, computed in the recipient's scope; None when the
    recipient has no login (no scope to compute) or no dashboard."""
    from weiying.wechat.push import absolute_url, textcard

    user = _user_of(employee)
    if user is None:
        return None
    period = report_period(schedule, slot)
    try:
        role = role_of_card(schedule, user)
        figures = dashboards.headline(user, role, period=period, limit=FIGURES_ON_CARD)
    except (PermissionDenied, NotFound):
        return None
    lines = []
    for f in figures[:FIGURES_ON_CARD]:
        line = f"{f.label}: {f.text}"
        if f.mom is not None:
            line += " (" + _("MoM %(change)s%%") % {"change": f"{f.mom:+}"} + ")"
        lines.append(line)
    query = f"?period={period.label}" if period.kind != "days" else ""
    name = REPORTS.get(schedule.report, REPORTS["dashboard"])[1]
    if name == "reports:dashboard_role":
        url = absolute_url(name, role, query=query)
    elif name == "reports:dashboard":
        url = absolute_url("reports:dashboard_role", role, query=query)
    else:
        try:
            url = absolute_url(name)
        except Exception:  # noqa: BLE001 - a report page not installed: link the dashboard
            url = absolute_url("reports:dashboard_role", role, query=query)
    title = f"{schedule.name} · {period.label}"
    return textcard(title=title, lines=lines, url=url, button=_("Details"))


def send_due(now: dt.datetime | None = None) -> int:
    """Write the cards of every schedule due now to the outbox; returns how many were
    written. Safe to run twice or on two workers at once."""
    from weiying.wechat import push

    now = now or timezone.now()
    written = 0
    for pk in ReportSchedule.objects.filter(is_active=True).values_list("pk", flat=True):
        with transaction.atomic():
            schedule = ReportSchedule.objects.select_for_update().filter(pk=pk).first()
            if schedule is None:
                continue
            slot = due_slot(schedule, now)
            if slot is None:
                continue
            for employee in recipients(schedule):
                with override(None):  # the company's default language (Chinese)
                    content = card(schedule, employee, slot)
                if content is None:
                    logger.info("scheduled report has no card for recipient",
                                extra={"schedule": pk, "employee": employee.pk})
                    continue
                key = f"report-schedule:{pk}:{timezone.localtime(slot):%Y%m%d%H}:{employee.pk}"
                if push.enqueue(kind=OUTBOX_KIND, employee=employee, content=content,
                                dedup_key=key) is not None:
                    written += 1
            schedule.last_slot = slot
            schedule.save(update_fields=["last_slot"])
    if written:
        logger.info("scheduled reports written", extra={"cards": written})
    return written


# --- reading and writing the schedules ----------------------------------------------------------
def schedules_for(user: Any) -> QuerySet[ReportSchedule]:
    """Every schedule for an administrator; else those the viewer made and those reaching
    someone in their scope."""
    require(user, "reports.view")
    qs = ReportSchedule.objects.select_related("recipient", "created_by")
    if has_perm(user, "settings.manage"):
        return qs
    return qs.filter(Q(created_by_id=user.pk) | Q(recipient__in=visible_employees(user)))


def _clean(actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 64:
        raise ValidationFailed(_("Give the schedule a name of at most 64 characters."),
                               field="name")
    report = str(data.get("report") or "dashboard")
    if report not in REPORTS:
        raise ValidationFailed(_("Pick what to send from the list."), field="report")
    frequency = str(data.get("frequency") or "")
    if frequency not in ScheduleFrequency.values:
        raise ValidationFailed(_("Send it daily or weekly."), field="frequency")
    try:
        hour = int(data.get("hour"))
    except (TypeError, ValueError):
        hour = -1
    if not 0 <= hour <= 23:
        raise ValidationFailed(_("The hour is a whole number from 0 to 23 (Beijing time)."),
                               field="hour")
    weekday = data.get("weekday")
    if frequency == ScheduleFrequency.WEEKLY:
        try:
            weekday = int(weekday)
        except (TypeError, ValueError):
            weekday = -1
        if not 0 <= weekday <= 6:
            raise ValidationFailed(_("A weekly report needs a weekday."), field="weekday")
    else:
        weekday = None
    recipient = data.get("recipient")
    level = str(data.get("recipient_level") or "").strip()
    if (recipient in (None, "")) == (not level):
        raise ValidationFailed(_("Send it to one employee or to the heads of one level, not "
                                 "both and not neither."), field="recipient")
    if level:
        if not has_perm(actor, "settings.manage"):
            raise PermissionDenied(_("Only an administrator sends reports to every head of a "
                                     "level; pick one employee instead."), code="forbidden")
        recipient = None
    else:
        pk = getattr(recipient, "pk", recipient)
        recipient = visible_employees(actor).filter(pk=pk).first() \
            if str(pk).isdigit() else None
        if recipient is None:
            raise NotFound(_("No employee with that id is in your view."), field="recipient")
    return {"name": name, "report": report, "frequency": frequency, "hour": hour,
            "weekday": weekday, "recipient": recipient, "recipient_level": level}


@transaction.atomic
def save_schedule(*, actor: Any, data: dict[str, Any],
                  schedule: ReportSchedule | None = None) -> ReportSchedule:
    """Create a schedule (or change one the actor may see) from form data."""
    require(actor, "reports.view")
    clean = _clean(actor, data)
    before = None
    if schedule is not None:
        schedule = schedules_for(actor).select_related(None).select_for_update().filter(pk=schedule.pk).first()
        if schedule is None:
            raise NotFound()
        before = audit.snapshot(schedule)
        for key, value in clean.items():
            setattr(schedule, key, value)
        schedule.save()
    else:
        schedule = ReportSchedule.objects.create(**clean, created_by=actor,
                                                 created_at=timezone.now())
    audit.record(actor, "report_schedule.save", schedule, before=before,
                 after=audit.snapshot(schedule))
    return schedule


@transaction.atomic
def set_active(*, actor: Any, schedule: ReportSchedule | int, active: bool) -> ReportSchedule:
    pk = getattr(schedule, "pk", schedule)
    found = schedules_for(actor).select_related(None).select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound()
    before = audit.snapshot(found)
    found.is_active = active
    if active:
        # Slots that passed while it was paused are not sent when it resumes.
        found.last_slot = max(filter(None, [found.last_slot,
                                            latest_slot(found, timezone.now())]))
    found.save(update_fields=["is_active", "last_slot"])
    audit.record(actor, "report_schedule.activate" if active else "report_schedule.pause",
                 found, before=before, after=audit.snapshot(found))
    return found


@transaction.atomic
def delete_schedule(*, actor: Any, schedule: ReportSchedule | int) -> None:
    pk = getattr(schedule, "pk", schedule)
    found = schedules_for(actor).select_related(None).select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound()
    audit.record(actor, "report_schedule.delete", found, before=audit.snapshot(found))
    found.delete()
