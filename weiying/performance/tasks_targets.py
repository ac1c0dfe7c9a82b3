"""The daily WeCom summary card (每日战报): every morning each active rep with a WeCom user id
gets yesterday's figures and the month so far against their targets, with a link to "my
targets"; a manager gets the same for their team. Cards go through the outbox, keyed by
person and day, so a second run the same day sends nothing twice."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from weiying.org.choices import DataScope, EmployeeStatus
from weiying.org.models import Employee
from weiying.performance import achievement
from weiying.performance.achievement import DEFAULT_KPIS, _System, display, percent
from weiying.performance.kpis import Evaluator, measures_for
from weiying.performance.models import Kpi
from weiying.performance.selectors import Period, totals
from weiying.performance.targets import targets_of

logger = logging.getLogger(__name__)

KIND = "performance.daily"
MAX_KPIS = 4


def dedup_key(employee: Employee, day: dt.date) -> str:
    return f"{KIND}:{employee.pk}:{day:%Y-%m-%d}"


def is_manager(employee: Employee) -> bool:
    """Someone who leads a team: a role seeing a department or a subtree, with targets.manage
    (a manager, a director)."""
    role = employee.role
    return (role is not None and role.data_scope in (DataScope.DEPARTMENT, DataScope.SUBTREE)
            and "targets.manage" in (role.permissions or []))


def card_content(employee: Employee, day: dt.date) -> dict[str, Any]:
    """The card for `employee` about `day` (yesterday, when the job runs in the morning)."""
    from weiying.wechat import push

    reader = _System()
    team = is_manager(employee)
    subject: dict[str, Any] = ({"department": employee.department} if team
                               else {"employee": employee})
    month = Period.of(day)
    so_far = Period(month.start, day)
    goals = targets_of(reader, period=month, **subject)
    catalogue = {k.code: k for k in Kpi.objects.all()}
    codes = [c for c in catalogue if c in goals][:MAX_KPIS] or [
        c for c in DEFAULT_KPIS if c in catalogue]
    kpis = [catalogue[c] for c in codes]
    wanted = measures_for(codes, catalogue)
    yesterday = Evaluator(totals(reader, period=Period(day, day), measures=wanted, **subject),
                          catalogue)
    month_to_date = Evaluator(totals(reader, period=so_far, measures=wanted, **subject),
                              catalogue)
    pace = achievement.pace(month, day)
    lines = [" · ".join(f"{k.label} {display(k, yesterday.value(k.code))}" for k in kpis)]
    lines[0] = _("Yesterday: %(figures)s") % {"figures": lines[0]}
    for k in kpis:
        actual = month_to_date.value(k.code)
        goal = goals[k.code].value if k.code in goals else None
        if goal is None:
            lines.append(_("%(kpi)s this month: %(actual)s") % {
                "kpi": k.label, "actual": display(k, actual)})
        else:
            lines.append(_("%(kpi)s this month: %(actual)s of %(target)s (%(pct)s)") % {
                "kpi": k.label, "actual": display(k, actual), "target": display(k, goal),
                "pct": percent(achievement.achievement_of(k, actual, goal))})
    lines.append(_("Time elapsed: %(pace)s of the month") % {"pace": percent(pace)})
    if team:
        title = _("%(team)s · daily figures for %(day)s") % {
            "team": employee.department.name, "day": f"{day:%m-%d}"}
        url = push.absolute_url("mobile:performance_team")
    else:
        title = _("Your daily figures for %(day)s") % {"day": f"{day:%m-%d}"}
        url = push.absolute_url("mobile:performance_mine")
    return push.textcard(title=title, lines=lines, url=url, button=_("Details"))


def recipients() -> list[Employee]:
    """Active people with a WeCom user id whose work is measured: reps (a role that edits
    leads) and the managers above them."""
    people = (Employee.objects.exclude(status=EmployeeStatus.LEFT).exclude(wecom_userid="")
              .select_related("role", "department", "user").order_by("pk"))
    out = []
    for person in people:
        role = person.role
        if role is None:
            continue
        if "lead.edit" in (role.permissions or []) or is_manager(person):
            out.append(person)
    return out


def send_daily_cards(*, today: dt.date | None = None) -> int:
    """Queue yesterday's card for everyone who should get one and has not; returns how many
    were queued now."""
    from weiying.wechat import push
    from weiying.wechat.models import OutboxMessage

    started = time.monotonic()
    day = (today or timezone.localdate()) - dt.timedelta(days=1)
    people = recipients()
    sent = set(OutboxMessage.objects.filter(
        dedup_key__in=[dedup_key(p, day) for p in people]).values_list("dedup_key", flat=True))
    queued = 0
    with translation.override(settings.LANGUAGE_CODE):
        for person in people:
            key = dedup_key(person, day)
            if key in sent:
                continue
            with transaction.atomic():
                row = push.enqueue(kind=KIND, employee=person,
                                   content=card_content(person, day), dedup_key=key)
            queued += row is not None
    logger.info("daily performance cards queued",
                extra={"count": queued, "day": day.isoformat(),
                       "ms": int((time.monotonic() - started) * 1000)})
    return queued


@db_periodic_task(crontab(hour="8", minute="5"))
def send_daily_cards_task() -> None:
    send_daily_cards()

