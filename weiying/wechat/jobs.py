"""Daily pushes: overdue instalments (each to its contract's owner and their manager) and the
morning summary card for every rep and manager.

The summary is computed for everyone at once: one grouped query per figure, then each
person's number is read from the groups their data scope covers (the same rule as
weiying.core.scope: their own rows, their reporting line, their department, or their
department subtree, found from the paths stored on each group). At 2,000 employees that is a
handful of queries, not thousands.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, DecimalField, F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import tree
from weiying.core.money import format_cny
from weiying.core.scope import ScopeRule
from weiying.org.choices import DataScope, EmployeeStatus
from weiying.org.models import Employee
from weiying.pipeline.choices import ContractStatus, LeadStatus
from weiying.pipeline.models import Contract, FollowUp, Instalment, Lead, Receipt
from weiying.wechat import audience, push
from weiying.wechat.subscribers import in_company_language

logger = logging.getLogger(__name__)

ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=18, decimal_places=2))


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# --- Overdue instalments ------------------------------------------------------------------------
def overdue_instalments(today: dt.date) -> QuerySet[Instalment]:
    """Instalments past their due date and not fully collected, on live contracts (the same
    rows the overview's "overdue" figure sums)."""
    return (Instalment.objects.filter(due_on__lt=today, collected__lt=F("amount"))
            .exclude(contract__status=ContractStatus.CANCELLED)
            .select_related("contract__owner__department", "contract__customer"))


def _overdue_card(row: Instalment, today: dt.date) -> dict[str, Any]:
    contract = row.contract
    with in_company_language():
        return push.textcard(
            title=_("Payment overdue: %(number)s instalment %(seq)s") % {
                "number": contract.number, "seq": row.seq},
            lines=[
                _("Customer: %(name)s") % {"name": contract.customer.name},
                _("Due on %(date)s, %(days)s days ago") % {
                    "date": row.due_on.isoformat(), "days": (today - row.due_on).days},
                _("Outstanding: %(amount)s") % {"amount": format_cny(row.outstanding)},
            ],
            url=push.absolute_url("mobile:contract_detail", contract.pk), button=_("Details"),
        )


def push_overdue_instalments(*, today: dt.date | None = None) -> int:
    """One card per overdue instalment to the contract's owner and to their manager (when
    the manager's scope holds it), once a day each. Returns the messages written."""
    # Limitation: one card per instalment, not one digest per person; a rep with many overdue
    # instalments gets many cards (paced by the outbox, never dropped).
    started = time.monotonic()
    today = today or timezone.localdate()
    rows = [r for r in overdue_instalments(today).order_by("due_on", "pk")
            if r.contract.owner is not None]
    owners = {row.contract.owner.pk: row.contract.owner for row in rows}
    managers = audience.managers_of(owners.values())
    # What each manager may see, one scoped query per manager (not per instalment).
    by_manager: dict[int, list[int]] = defaultdict(list)
    people: dict[int, Employee] = {}
    for row in rows:
        manager = managers[row.contract.owner.pk]
        if manager is not None:
            by_manager[manager.pk].append(row.pk)
            people[manager.pk] = manager
    visible = {pk: audience.sees(people[pk], Instalment, ids) for pk, ids in by_manager.items()}

    items = []
    for row in rows:
        owner = row.contract.owner
        card = _overdue_card(row, today)
        recipients = [owner]
        manager = managers[owner.pk]
        if manager is not None and row.pk in visible.get(manager.pk, set()):
            recipients.append(manager)
        for person in recipients:
            items.append(("instalment.overdue", person, card,
                          f"instalment.overdue:{row.pk}:{today.isoformat()}:to:{person.pk}"))
    with transaction.atomic():
        written = push.enqueue_many(items)
    logger.info("overdue instalment pushes written",
                extra={"instalments": len(rows), "messages": written,
                       "ms": int((time.monotonic() - started) * 1000)})
    return written


# --- The morning summary ------------------------------------------------------------------------
@dataclass
class _Totals:
    """One figure, summed per scope key: per owner, per reporting-line head, per department,
    per department subtree."""

    owner: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(_pair))
    line: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(_pair))
    department: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(_pair))
    subtree: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(_pair))

    def add(self, group: dict[str, Any]) -> None:
        values = (group["n"], group["s"])
        targets = []
        if group["o"] is not None:
            targets.append(self.owner[group["o"]])
            targets += [self.line[i] for i in tree.ancestor_ids(group["op"])]
        if group["d"] is not None:
            targets.append(self.department[group["d"]])
            targets += [self.subtree[i] for i in tree.ancestor_ids(group["dp"])]
        for target in targets:
            target[0] += values[0]
            target[1] += values[1]

    def of(self, kind: str, person: Employee) -> tuple[int, Decimal]:
        table = {DataScope.SELF: (self.owner, person.pk),
                 DataScope.LINE: (self.line, person.pk),
                 DataScope.DEPARTMENT: (self.department, person.department_id),
                 DataScope.SUBTREE: (self.subtree, person.department_id)}
        totals, key = table[kind]
        found = totals.get(key)
        return (found[0], found[1]) if found else (0, Decimal("0"))


def _pair() -> list[Any]:
    return [0, Decimal("0")]


def grouped(qs: QuerySet[Any], amount: str | None = None) -> _Totals:
    """One query: count (and sum of `amount`) of `qs` grouped by what the model's scope rule
    filters on — its owner (id and reporting-line path) and its department (id and path)."""
    rule: ScopeRule = qs.model.scope
    if rule.pool is not None:
        raise ValueError("pooled models are not summed here: their pool widens the scope")
    owner = rule.owner
    department = rule.department or f"{owner}__department"
    rows = (qs.values(o=F(f"{owner}_id"), op=F(f"{owner}__path"),
                      d=F(f"{department}_id"), dp=F(f"{department}__path"))
            .annotate(n=Count("pk"), s=Coalesce(Sum(amount), ZERO) if amount else ZERO)
            .order_by())
    totals = _Totals()
    for group in rows:
        totals.add(group)
    return totals


def scope_kind(person: Employee) -> str:
    """The data scope `weiying.core.scope.data_scope_of` gives this person's login, read from
    the role loaded with them (no query); a person without a login is read by their role."""
    user = person.user
    if user is not None and not user.is_active:
        return DataScope.NONE
    if user is not None and user.is_superuser:
        return DataScope.ALL
    return person.role.data_scope if person.role is not None else DataScope.NONE


SUMMARY_KINDS = (DataScope.SELF, DataScope.LINE, DataScope.DEPARTMENT, DataScope.SUBTREE)


def summary_recipients() -> list[Employee]:
    """Everyone still employed with a WeCom account whose scope is their own records (reps)
    or a team's (managers). People who see everything (finance, operations, administrators)
    get no sales summary."""
    people = (Employee.objects.exclude(status=EmployeeStatus.LEFT).exclude(wecom_userid="")
              .select_related("user", "role", "department").order_by("pk"))
    return [p for p in people if scope_kind(p) in SUMMARY_KINDS]


def summary_figures(today: dt.date) -> dict[str, _Totals]:
    """Every figure of the summary for everyone: one grouped query each."""
    yesterday = today - dt.timedelta(days=1)
    end_of_today = _start_of(today + dt.timedelta(days=1))
    return {
        "due": grouped(FollowUp.objects.filter(next_done=False, next_at__isnull=False,
                                               next_at__lte=end_of_today)),
        "leads": grouped(Lead.objects.filter(status__in=[LeadStatus.NEW,
                                                         LeadStatus.ASSIGNED])),
        "signed": grouped(Contract.objects.filter(signed_on=yesterday), "total"),
        "collected": grouped(Receipt.objects.filter(received_on=yesterday), "amount"),
    }


def summary_of(person: Employee, figures: dict[str, _Totals]) -> dict[str, Any]:
    kind = scope_kind(person)
    due, _s = figures["due"].of(kind, person)
    leads, _s = figures["leads"].of(kind, person)
    signed, signed_total = figures["signed"].of(kind, person)
    _n, collected = figures["collected"].of(kind, person)
    return {"due": due, "leads": leads, "signed": signed, "signed_total": signed_total,
            "collected": collected, "team": kind != DataScope.SELF}


def summary_card(person: Employee, figures: dict[str, Any], today: dt.date) -> dict[str, Any]:
    with in_company_language():
        if figures["team"]:
            title = _("Your team today · %(date)s") % {"date": today.isoformat()}
            scope = _("%(department)s, as far as you may see") % {
                "department": person.department.name}
        else:
            title = _("Your day · %(date)s") % {"date": today.isoformat()}
            scope = person.name
        open_label = _("Open my day")
        lines = [
            f"**{title}**",
            f"> {scope}",
            _("Follow-ups due today, late ones included: %(n)s") % {"n": figures["due"]},
            _("New leads waiting for a first contact: %(n)s") % {"n": figures["leads"]},
            _("Signed yesterday: %(n)s, %(amount)s") % {
                "n": figures["signed"], "amount": format_cny(figures["signed_total"])},
            _("Collected yesterday: %(amount)s") % {"amount": format_cny(figures["collected"])},
            f"[{open_label}]({push.absolute_url('mobile:my_day')})",
        ]
        return push.markdown("\n".join(lines))


def push_daily_summaries(*, today: dt.date | None = None) -> int:
    """The 08:30 card for every rep and manager, once per person per day. Returns the
    messages written (repeats of a second run included; the database keeps one)."""
    started = time.monotonic()
    today = today or timezone.localdate()
    people = summary_recipients()
    figures = summary_figures(today)
    items = [("summary", person, summary_card(person, summary_of(person, figures), today),
              f"summary:{today.isoformat()}:{person.pk}") for person in people]
    with transaction.atomic():
        written = push.enqueue_many(items)
    logger.info("daily summaries written",
                extra={"people": len(people), "ms": int((time.monotonic() - started) * 1000)})
    return written
