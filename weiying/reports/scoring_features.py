"""The rows the scoring models learn from and the rows they score, built by the same code so a
model sees at scoring time what it saw in training. Each feature is what was known at the
row's reference time (a lead's arrival, a customer's reference date); the exceptions are
marked where they live. Reads the whole company: the job trains on everybody's history and
the pages filter the stored scores by the viewer's scope (weiying.reports.scoring)."""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Max, Value, When
from django.utils import timezone

from weiying.pipeline.choices import ContractStatus, LeadStatus, OpportunityStatus

OPEN_LEAD_STATUSES = (LeadStatus.NEW, LeadStatus.ASSIGNED, LeadStatus.CONTACTED)
SIGNED_STATUSES = (ContractStatus.SIGNED, ContractStatus.IN_DELIVERY, ContractStatus.COMPLETED)

# A lead still open this long after it arrived counts as not won.
LEAD_HORIZON = dt.timedelta(days=120)
FIRST_WEEK = dt.timedelta(days=7)
# Smoothing of an owner's win rate towards the company's: worth this many leads.
OWNER_PRIOR_WEIGHT = 5
# Did the customer sign again within this long after the reference date?
REPURCHASE_WINDOW = dt.timedelta(days=365)
MAX_REFERENCE_DATES = 12
# Days since the last follow-up when there was none, and the cap on it.
NO_FOLLOWUP_DAYS = 730


@dataclass(frozen=True)
class FeatureSet:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


LEAD_FEATURES = FeatureSet(
    numeric=("has_interest", "followups_7d", "owner_win_rate", "owner_history"),
    categorical=("source", "channel", "region", "city", "first_response", "weekday",
                 "arrival_hour"),
)
REPURCHASE_FEATURES = FeatureSet(
    numeric=("recency_days", "frequency", "monetary", "products", "tickets_365d",
             "days_since_followup"),
    categorical=("level", "industry"),
)


@dataclass
class Rows:
    """One row per object (and reference date): features in the set's order, the label when
    it is history (empty when the rows are to be scored), the reference time."""

    ids: list[int] = field(default_factory=list)
    features: list[list[Any]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    times: list[dt.datetime] = field(default_factory=list)

    def add(self, pk: int, features: list[Any], at: dt.datetime, label: int | None = None) -> None:
        self.ids.append(pk)
        self.features.append(features)
        self.times.append(at)
        if label is not None:
            self.labels.append(label)


# --- leads --------------------------------------------------------------------------------------
class _Track:
    """Resolutions (time, won) of one owner or of the company, to ask how many were resolved
    and won before a moment."""

    def __init__(self) -> None:
        self._events: list[tuple[dt.datetime, int]] = []
        self._times: list[dt.datetime] = []
        self._wins: list[int] = [0]

    def add(self, at: dt.datetime, won: int) -> None:
        self._events.append((at, won))

    def seal(self) -> None:
        self._events.sort()
        self._times = [at for at, _won in self._events]
        for _at, won in self._events:
            self._wins.append(self._wins[-1] + won)

    def before(self, at: dt.datetime) -> tuple[int, int]:
        n = bisect.bisect_left(self._times, at)
        return n, self._wins[n]


def lead_outcome(status: str, opp_status: str | None, opp_closed: dt.datetime | None,
                 created: dt.datetime, last_activity: dt.datetime,
                 now: dt.datetime) -> tuple[int | None, dt.datetime | None]:
    """(label, when it became known): 1 when the lead's opportunity was won within
    LEAD_HORIZON of its arrival; 0 when it was lost or the lead disqualified within it, or the
    horizon passed without a win; (None, None) while undecided. A disqualification's moment is
    the lead's last activity (the service stamps it)."""
    deadline = created + LEAD_HORIZON
    closed = max(opp_closed or last_activity, created)
    if opp_status == OpportunityStatus.WON and closed <= deadline:
        return 1, closed
    if opp_status == OpportunityStatus.LOST and closed <= deadline:
        return 0, closed
    if status == LeadStatus.DISQUALIFIED and max(last_activity, created) <= deadline:
        return 0, max(last_activity, created)
    if deadline <= now:
        return 0, deadline
    return None, None


def is_labelled(created: dt.datetime, now: dt.datetime) -> bool:
    """Only a lead at least LEAD_HORIZON old is learnt from, decided early or not: among the
    younger ones only the quick decisions are known, mostly disqualifications, and counting
    them would make the newest leads (the held-out ones) look worse than they are."""
    return created + LEAD_HORIZON <= now


def response_bucket(assigned_at: dt.datetime | None, seconds: int | None) -> str:
    if assigned_at is None:
        return "unassigned"
    if seconds is None:
        return "none"
    for limit, name in ((3600, "1h"), (4 * 3600, "4h"), (86400, "1d"), (3 * 86400, "3d")):
        if seconds < limit:
            return name
    return "later"


def hour_bucket(hour: int) -> str:
    if hour < 8:
        return "night"
    if hour < 12:
        return "morning"
    return "afternoon" if hour < 18 else "evening"


def _lead_values(queryset: Any) -> Any:
    return queryset.annotate(
        filled=Case(When(interest="", then=Value(0)), default=Value(1),
                    output_field=IntegerField()),
    ).values_list(
        "pk", "created_at", "source", "channel", "region", "city", "filled", "assigned_at",
        "first_response_seconds", "owner_id", "status", "last_activity_at",
        "opportunity__status", "opportunity__closed_at",
    ).order_by("pk")


def _first_week_followups(leads: Any) -> dict[int, int]:
    from weiying.pipeline.models import FollowUp

    # Query cost: one pass over the follow-ups of the leads, grouped in the database.
    return dict(
        FollowUp.objects.filter(lead__in=leads, at__lt=F("lead__created_at") + FIRST_WEEK)
        .values("lead_id").annotate(n=Count("id")).values_list("lead_id", "n")
    )


def lead_rows(*, now: dt.datetime | None = None, open_only: bool = False) -> Rows:
    """The labelled history of leads (`open_only=False`) or the open leads to score."""
    # Limitation: the owner is today's owner (a reassigned lead counts for its new owner), and
    # the pass below reads every lead in Python: on the xl data set (millions of leads) the
    # training job has not been measured; the fit itself is capped at MAX_TRAINING_ROWS.
    from weiying.pipeline.models import Lead

    now = now or timezone.now()
    company = _Track()
    owners: dict[int, _Track] = defaultdict(_Track)
    kept = []
    # 1. One pass over every lead: its outcome feeds the owners' track records; keep the
    #    labelled ones (or the open ones) for their features.
    for row in _lead_values(Lead.objects.filter(created_at__lte=now)).iterator(chunk_size=5000):
        (_pk, created, *_rest, owner_id, status, last_activity, opp_status, opp_closed) = row
        label, known_at = lead_outcome(status, opp_status, opp_closed, created, last_activity,
                                       now)
        if label is not None and known_at is not None and known_at <= now:
            company.add(known_at, label)
            if owner_id is not None:
                owners[owner_id].add(known_at, label)
        if open_only:
            if status in OPEN_LEAD_STATUSES:
                kept.append((row, None))
        elif label is not None and is_labelled(created, now):
            kept.append((row, label))
    company.seal()
    for track in owners.values():
        track.seal()

    # 2. The features, each as known at the lead's arrival (follow-ups: its first week).
    leads = Lead.objects.filter(status__in=OPEN_LEAD_STATUSES) if open_only else Lead.objects
    followups = _first_week_followups(leads.filter(created_at__lte=now))
    rows = Rows()
    for row, label in kept:
        (pk, created, source, channel, region, city, filled, assigned_at, seconds,
         owner_id, *_rest) = row
        n_all, w_all = company.before(created)
        prior = (w_all + 1) / (n_all + 2)
        n, wins = owners[owner_id].before(created) if owner_id in owners else (0, 0)
        rate = (wins + OWNER_PRIOR_WEIGHT * prior) / (n + OWNER_PRIOR_WEIGHT)
        local = timezone.localtime(created)
        rows.add(pk, [
            filled, followups.get(pk, 0), rate, math.log1p(n),
            source or "", channel or "", region or "", city or "",
            response_bucket(assigned_at, seconds), str(local.weekday()),
            hour_bucket(local.hour),
        ], created, label)
    return rows


# --- customers --------------------------------------------------------------------------------
def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _first_of_months(first: dt.date, last: dt.date) -> list[dt.date]:
    day = (first.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    days = []
    while day <= last:
        days.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    return days


def _signed_history() -> dict[int, tuple[list[dt.date], list[float]]]:
    """Per customer: the days its contracts were signed, and the running total signed (yuan,
    as a float: a model feature, not money)."""
    from weiying.pipeline.models import Contract

    history: dict[int, tuple[list[dt.date], list[float]]] = {}
    rows = (Contract.objects.filter(status__in=SIGNED_STATUSES, signed_on__isnull=False)
            .values_list("customer_id", "signed_on", "total").order_by("customer_id",
                                                                         "signed_on", "pk"))
    for customer_id, signed_on, total in rows.iterator(chunk_size=5000):
        days, running = history.setdefault(customer_id, ([], [0.0]))
        days.append(signed_on)
        running.append(running[-1] + float(total or 0))
    return history


def _snapshot(reference: dt.date, customers: dict[int, tuple[str, str]],
              history: dict[int, tuple[list[dt.date], list[float]]],
              rows: Rows, *, labelled: bool) -> None:
    """Add one row per customer with a contract signed before `reference`: its features as
    of that day and, for history, whether it signed again within REPURCHASE_WINDOW."""
    from weiying.pipeline.models import ContractLine, FollowUp, Ticket

    at = _local_midnight(reference)
    # Query cost: three grouped reads per reference date.
    products = dict(
        ContractLine.objects.filter(contract__status__in=SIGNED_STATUSES,
                                    contract__signed_on__lt=reference)
        .values("contract__customer_id").annotate(n=Count("product_id", distinct=True))
        .values_list("contract__customer_id", "n")
    )
    tickets = dict(
        Ticket.objects.filter(opened_at__gte=at - REPURCHASE_WINDOW, opened_at__lt=at)
        .values("customer_id").annotate(n=Count("id")).values_list("customer_id", "n")
    )
    followed = dict(
        FollowUp.objects.filter(customer__isnull=False, at__lt=at)
        .values("customer_id").annotate(last=Max("at")).values_list("customer_id", "last")
    )
    window_end = reference + REPURCHASE_WINDOW
    for customer_id, (level, industry) in customers.items():
        days, running = history[customer_id]
        before = bisect.bisect_left(days, reference)
        if before == 0:
            continue
        last_followup = followed.get(customer_id)
        quiet = NO_FOLLOWUP_DAYS if last_followup is None else min(
            NO_FOLLOWUP_DAYS, (at - last_followup).days)
        label = None
        if labelled:
            label = int(before < len(days) and days[before] < window_end)
        rows.add(customer_id, [
            (reference - days[before - 1]).days, before, math.log1p(running[before]),
            products.get(customer_id, 0), tickets.get(customer_id, 0), quiet,
            level or "", industry or "",
        ], at, label)


def repurchase_rows(*, now: dt.datetime | None = None, to_score: bool = False) -> Rows:
    """Customers with a signed contract: at the first of each month whose repurchase window
    has closed (the latest MAX_REFERENCE_DATES of them), or as of today to be scored."""
    # Limitation: level and industry are today's values, not those of the reference date (the
    # customer keeps no history of them); a level raised after a repurchase flatters the
    # model a little.
    # Limitation: the repurchase windows of the older (training) snapshots overlap the newest
    # (held-out) reference dates — a history of 18 months leaves no room for a gap of a year —
    # so the held-out AUC of this model is somewhat optimistic.
    from weiying.customers.models import Customer

    now = now or timezone.now()
    today = timezone.localdate(now)
    history = _signed_history()
    customers = {
        pk: (level, industry)
        for pk, level, industry in Customer.objects.filter(
            merged_into__isnull=True, pk__in=list(history)
        ).values_list("pk", "level", "industry").order_by("pk")
    }
    rows = Rows()
    if to_score:
        # Everything up to and including today counts as before the reference.
        _snapshot(today + dt.timedelta(days=1), customers, history, rows, labelled=False)
        return rows
    if not history:
        return rows
    first = min(days[0] for days, _running in history.values())
    references = _first_of_months(first, today - REPURCHASE_WINDOW)[-MAX_REFERENCE_DATES:]
    for reference in references:
        _snapshot(reference, customers, history, rows, labelled=True)
    return rows
