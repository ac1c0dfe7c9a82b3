"""The demo company: a Chinese B2B seller with a five-level sales pyramid and 18 months of
history, written straight into the database in batches.

The generator does not call the services one row at a time (2,000 employees and half a
million rows would take an hour); it simulates the same history and writes the rows the
services would have left, derived fields included:

- customers: last/next follow-up and activity times, signed and collected totals, last
  purchase, the shared pool after the nightly recycle job (weiying.customers.services);
- leads: assignment, first response (from assignment, else creation), conversion and
  disqualification (weiying.pipeline.services.leads, .followups);
- opportunities: stage changes with the seconds spent in the previous stage, close times
  (weiying.pipeline.services.opportunities);
- contracts: lines priced like `price_line`, totals summed from rounded lines, approval
  above the discount threshold, numbers HT/GD + yyyymm + a monthly sequence, instalments
  split with `allocate`, receipts allocated to their instalment (.contracts, .tickets);
- follow-up plans superseded by the owner's next follow-up, reminders stamped as the
  15-minute job would.

Everything is drawn from one `random.Random(seed)` against a fixed clock (midnight at the
start of `today`), so a seed and a date always give the same company.

Limitation: the history carries no audit rows and no domain events (only one
"demo.generate" audit row), so a layer that builds its figures from events sees the
demo's history only once it can rebuild from the rows themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from weiying.catalog.models import Product
from weiying.core import audit, statistics, tree
from weiying.core.models import AuditLog, DomainEvent, EventHandling
from weiying.core.money import allocate, money, split_vat
from weiying.customers.models import (
    Contact,
    Customer,
    OwnershipChange,
    Tag,
    WeChatIdentity,
)
from weiying.customers.naming import name_key
from weiying.demo import data
from weiying.org.models import Company, Department, Employee, Role
from weiying.pipeline.models import (
    AssignmentRule,
    Contract,
    ContractLine,
    FollowUp,
    Instalment,
    Lead,
    Opportunity,
    OpportunityLine,
    Pipeline,
    Receipt,
    Stage,
    StageChange,
    Ticket,
)

logger = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
DEMO_PASSWORD = "weiying123"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
# The demo logins, in the order they are printed: (role code, username).
LOGINS = [("admin", "admin"), ("director", "director"), ("manager", "manager"), ("rep", "rep"),
          ("finance", "finance"), ("operations", "operations")]
RECYCLE_NO_FOLLOWUP = dt.timedelta(days=30)
RECYCLE_NO_OPPORTUNITY = dt.timedelta(days=90)
RECYCLE_WARNING = dt.timedelta(days=3)
REMINDER_WINDOW = dt.timedelta(minutes=15)
# Reasons the nightly recycle job writes (as the Chinese UI shows them).
STALE = "超过30天未跟进，自动回收"
IDLE = "超过90天无商机，自动回收"


# --- Sizes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    """How big a company to make. Fan-outs are (low, high) per parent, drawn per node."""

    name: str
    months: int
    regions: int  # branches (大区) under headquarters
    cities: tuple[int, int]
    areas: tuple[int, int]
    teams: tuple[int, int]
    reps: tuple[int, int]
    finance: int
    operations: int
    leads_per_rep_month: float
    legacy_customers_per_rep: float
    # Extra levels for the deep pyramid (xl): provinces between branch and city, and sales
    # offices (营业部) between area and team.
    provinces: tuple[int, int] | None = None
    offices: tuple[int, int] | None = None
    batch: int = 20_000
    streaming: bool = False


SIZES = {
    "small": Size("small", months=3, regions=2, cities=(2, 2), areas=(2, 2), teams=(2, 2),
                  reps=(5, 7), finance=4, operations=4, leads_per_rep_month=6.0,
                  legacy_customers_per_rep=3.0),
    "demo": Size("demo", months=18, regions=5, cities=(3, 4), areas=(2, 4), teams=(3, 5),
                 reps=(6, 10), finance=12, operations=20, leads_per_rep_month=2.2,
                 legacy_customers_per_rep=2.0),
    # ≈100,000 employees at depth 7; ≈1 M customers, 5 M leads, 20 M follow-ups at scale 1.
    "xl": Size("xl", months=18, regions=8, cities=(4, 4), areas=(4, 4), teams=(4, 4),
               reps=(9, 11), finance=60, operations=200, leads_per_rep_month=3.4,
               legacy_customers_per_rep=4.0, provinces=(4, 4), offices=(4, 4), batch=50_000,
               streaming=True),
}


# --- Public API -----------------------------------------------------------------------------
def is_generated() -> bool:
    """True once a demo company has been generated completely in this database."""
    return Company.objects.filter(name=data.COMPANY_NAME, short_name=data.COMPANY_SHORT).exists()


def demo_logins() -> list[tuple[str, str, str]]:
    """(role, username, employee name) of the demo logins that exist, in a fixed order."""
    User = get_user_model()
    users = {u.username: u for u in User.objects.filter(username__in=[u for _r, u in LOGINS])}
    names = dict(
        Employee.objects.filter(user__in=users.values()).values_list("user_id", "name")
    )
    return [(role, username, names.get(users[username].pk, ""))
            for role, username in LOGINS if username in users]


def generate(
    size: str = "demo", seed: int = 7, fresh: bool = False, *, scale: float = 1.0,
    today: dt.date | None = None,
) -> str:
    """Generate the demo company; returns a one-line summary of what was made.

    `fresh` deletes the business data first (organisation, customers, pipeline, audit trail;
    roles, pipelines and stages stay). Without it the database must hold no employees.
    `scale` shrinks (or grows) the pyramid, mostly meant for "xl".
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; pick one of {', '.join(SIZES)}")
    if not 0 < scale <= 10:
        raise ValueError("scale must be above 0 and at most 10")
    spec = SIZES[size]
    today = today or timezone.localdate()
    started = time.monotonic()
    from weiying.org.services import ensure_builtin_roles

    ensure_builtin_roles()
    if fresh:
        wipe()
    elif Employee.objects.exists():
        raise RuntimeError(
            "the database already holds employees; generate with fresh=True to replace them"
        )

    writer = _Writer(spec.batch, streaming=spec.streaming)
    with _nothing() if spec.streaming else transaction.atomic():
        gen = _Generator(spec, seed=seed, today=today, scale=scale, writer=writer)
        gen.run()
        writer.flush()
        _reset_sequences()
        with transaction.atomic():
            Company.objects.filter(pk=gen.company_id).update(short_name=data.COMPANY_SHORT)
            company = Company.objects.get(pk=gen.company_id)
            audit.record(None, "demo.generate", company, after={
                "size": size, "seed": seed, "scale": scale, "today": today.isoformat(),
                "counts": writer.counts_by_label(),
            })
    # The history was written in bulk, without events: open everyone's HR history and build
    # the performance roll-ups from it (the finance facts follow when the books are opened).
    from weiying.performance import facts
    from weiying.reports import rollup

    # A bulk load: the planner has no statistics of it yet (a plan from stale ones spilled the
    # follow-ups' grouping to disk for minutes on the xl company).
    statistics.refresh(full=True)
    facts.rebuild()
    rollup.rebuild()  # the funnel's roll-up, likewise kept by events from now on
    if size != "xl":  # a hundred thousand people's targets would only slow the benchmark down
        from weiying.demo import performance

        performance.seed(today, history_months=spec.months)
    statistics.refresh(full=True)  # and of the roll-ups and targets just written
    seconds = time.monotonic() - started
    logger.info("demo generated", extra={"size": size, "seed": seed, "ms": int(seconds * 1000)})
    c = writer.counts
    return (
        f"{data.COMPANY_NAME}: {c[Employee]} employees in {c[Department]} departments, "
        f"{c[Customer]} customers, {c[Lead]} leads, {c[FollowUp]} follow-ups, "
        f"{c[Opportunity]} opportunities, {c[Contract]} contracts, {c[Receipt]} receipts, "
        f"{c[Ticket]} tickets over {spec.months} months to {today:%Y-%m-%d}"
    )


# --- Deleting ---------------------------------------------------------------------------------
# Configuration that survives a fresh generation.
def _kept() -> set[type[models.Model]]:
    from weiying.finance.models import Account
    from weiying.performance.models import Kpi

    return {Role, Pipeline, Stage, Account, Kpi}


def _wiped_models() -> list[type[models.Model]]:
    """Business models of this project, plus every project model (or many-to-many table)
    that points at one, so nothing is left pointing at a deleted row."""
    from django.apps import apps

    keep = _kept()
    every = apps.get_models(include_auto_created=True)
    base = {
        m for m in every
        # performance and reports: the roll-ups (the funnel's hold ids, not foreign keys),
        # targets, commissions, scores and schedules
        if m._meta.app_label in {"org", "customers", "catalog", "pipeline", "finance",
                                 "performance", "reports"}
        and m not in keep
    } | {AuditLog, DomainEvent, EventHandling}
    ours = [m for m in every if m.__module__.startswith("weiying.") or m._meta.auto_created]
    changed = True
    while changed:
        changed = False
        for model in ours:
            if model not in base and model not in keep and any(
                f.related_model in base for f in model._meta.concrete_fields if f.is_relation
            ):
                base.add(model)
                changed = True
    return sorted(base, key=lambda m: m._meta.label)


@transaction.atomic
def wipe() -> None:
    """Delete the business data in bulk (no per-row signals), in one transaction.

    Foreign keys are deferred to the commit on both SQLite and PostgreSQL, so the order of
    the DELETEs does not matter as long as everything that points at a deleted row goes too.
    """
    User = get_user_model()
    user_ids = set(Employee.objects.exclude(user=None).values_list("user_id", flat=True))
    user_ids |= set(User.objects.filter(username__in=[u for _r, u in LOGINS])
                    .values_list("pk", flat=True))
    for model in _wiped_models():
        model._base_manager.all()._raw_delete(model._base_manager.db)
    if user_ids:
        User.objects.filter(pk__in=user_ids).delete()


# --- Writing ----------------------------------------------------------------------------------
# The order rows are written in; all foreign keys point backwards or are deferred.
_ORDER = [Company, Department, Employee, Product, Tag, Customer, Contact, WeChatIdentity,
          Customer.tags.through, OwnershipChange, Lead, Opportunity, OpportunityLine,
          StageChange, FollowUp, Contract, ContractLine, Instalment, Receipt, Ticket,
          AssignmentRule]


class _Row:
    """A row to write: plain attributes named like the model's columns (`owner_id`, …).

    Django model instances cost more to build than the simulation itself, and bulk_create
    compiles every value through the field API; the writer below skips both.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values


class _Writer:
    """Buffers rows per model and writes them per batch: executemany on SQLite, COPY on
    PostgreSQL."""

    def __init__(self, batch: int, *, streaming: bool) -> None:
        self.batch = batch
        self.streaming = streaming
        self.rows: dict[Any, list[_Row]] = defaultdict(list)
        self.pending = 0
        self.counts: dict[Any, int] = defaultdict(int)

    def new(self, model: Any, **values: Any) -> _Row:
        row = _Row(values)
        self.rows[model].append(row)
        self.pending += 1
        return row

    def maybe_flush(self) -> None:
        if self.pending >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with transaction.atomic():
            for model in _ORDER:
                rows = self.rows.pop(model, None)
                if rows:
                    _insert(model, rows)
                    self.counts[model] += len(rows)
        if self.rows:
            raise RuntimeError(f"rows of unexpected models: {list(self.rows)}")
        self.pending = 0

    def counts_by_label(self) -> dict[str, int]:
        return {m._meta.label: n for m, n in self.counts.items()}


def _adapter(f: models.Field) -> Any:
    """How a value goes to the driver, as the field's get_db_prep_save would send it."""
    if connection.vendor != "sqlite":
        return None  # psycopg adapts aware datetimes, dates and Decimals itself
    if isinstance(f, models.DateTimeField):
        # SQLite keeps naive UTC text, e.g. "2025-03-01 02:15:00".
        return lambda v: None if v is None else v.astimezone(dt.UTC).isoformat(" ")[:-6]
    if isinstance(f, models.DateField):
        return lambda v: None if v is None else str(v)
    return None


def _insert(model: Any, rows: list[_Row]) -> None:
    fields = [f for f in model._meta.concrete_fields
              if not f.primary_key or "id" in rows[0].__dict__]
    qn = connection.ops.quote_name
    sql = (f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    plain = [(f.attname, f.get_default()) for f in fields]
    adapted = [(i, a) for i, a in enumerate(_adapter(f) for f in fields) if a is not None]
    params = []
    for row in rows:
        values = row.__dict__
        out = [values.get(name, default) for name, default in plain]
        for i, adapt in adapted:
            out[i] = adapt(out[i])
        params.append(out)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY is several times faster than INSERT … VALUES on PostgreSQL.
            columns = ", ".join(qn(f.column) for f in fields)
            with cursor.cursor.copy(
                f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN"
            ) as copy:
                for values in params:
                    copy.write_row(values)
            return
        for chunk in range(0, len(params), 5000):
            cursor.executemany(sql, params[chunk:chunk + 5000])


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _reset_sequences() -> None:
    """Rows were written with explicit ids; move PostgreSQL's sequences past them."""
    if connection.vendor != "postgresql":
        return
    sql = connection.ops.sequence_reset_sql(
        no_style(), [Company, Department, Employee, Product, Customer, Lead, Opportunity,
                     Contract, Instalment, Tag]
    )
    with connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)


# --- Small helpers ----------------------------------------------------------------------------
_PREFIXES = [130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 153, 155,
             156, 157, 158, 159, 166, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185,
             186, 187, 188, 189, 191, 198, 199]


class _Phones:
    """Unique mobile numbers without remembering them: n ↦ a·n + b over the number space is
    a bijection when a is coprime to the space's size, so no two people share one."""

    def __init__(self, rng: random.Random) -> None:
        self.space = len(_PREFIXES) * 10**8
        self.a = 2_654_435_761
        while math.gcd(self.a, self.space) != 1:
            self.a += 2
        self.b = rng.randrange(self.space)
        self.n = 0

    def next(self) -> str:
        x = (self.a * self.n + self.b) % self.space
        self.n += 1
        return f"{_PREFIXES[x // 10**8]}{x % 10**8:08d}"


def _at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TZ)


def _between(start: dt.datetime, end: dt.datetime, share: float) -> dt.datetime:
    """The moment `share` of the way from start to end, in whole seconds."""
    return start + dt.timedelta(seconds=int((end - start).total_seconds() * share))


def _awake(moment: dt.datetime) -> dt.datetime:
    """Move a moment in the small hours to the next morning (people sleep)."""
    local = moment.astimezone(TZ)
    if local.hour < 8:
        return _at(local.date(), 8, local.minute, local.second)
    if local.hour >= 22:
        return _at(local.date() + DAY, 8, local.minute, local.second)
    return moment


def _local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(TZ).date()


def _next_run(moment: dt.datetime, hour: int = 2) -> dt.datetime:
    """The first nightly job run (at `hour` o'clock) at or after `moment`."""
    local = moment.astimezone(TZ)
    run = _at(local.date(), hour)
    return run if run >= local else run + DAY


def _reminder_tick(next_at: dt.datetime) -> dt.datetime:
    """When the 15-minute reminder job first sees a plan: the first quarter hour at or after
    next_at − 15 minutes."""
    start = next_at - REMINDER_WINDOW
    minutes = (start.minute // 15) * 15
    tick = start.replace(minute=minutes, second=0, microsecond=0)
    return tick if tick >= start else tick + REMINDER_WINDOW


def _cn(n: int) -> str:
    digits = data.CN_NUMBERS
    if n <= 10:
        return digits[n - 1]
    if n < 20:
        return "十" + digits[n - 11]
    tens, ones = divmod(n, 10)
    return digits[tens - 1] + "十" + (digits[ones - 1] if ones else "")


# --- Lightweight records used while simulating ------------------------------------------------
class _Dept:
    __slots__ = ("id", "parent", "name", "kind", "city", "region", "path", "depth", "head",
                 "branch", "reps")

    def __init__(self, id: int, parent: _Dept | None, name: str, kind: str, city: str = "",
                 region: str = "") -> None:
        self.id, self.parent, self.name, self.kind = id, parent, name, kind
        self.city, self.region = city, region
        self.path = tree.child_path(parent.path if parent else "", id)
        self.depth = tree.depth(self.path)
        self.head: _Emp | None = None
        self.branch: _Dept | None = self if kind == "branch" else (parent.branch if parent else None)
        self.reps: list[_Emp] = []


class _Emp:
    __slots__ = ("id", "number", "name", "dept", "position", "level", "leader", "path",
                 "hire", "leave", "probation", "phone", "role", "user_id", "pace")

    def __init__(self, id: int, number: str, name: str, dept: _Dept, position: str,
                 level: str, leader: _Emp | None, role: str, hire: dt.date, phone: str) -> None:
        self.id, self.number, self.name, self.dept = id, number, name, dept
        self.position, self.level, self.leader, self.role = position, level, leader, role
        self.path = tree.child_path(leader.path if leader else "", id)
        self.hire, self.phone = hire, phone
        self.leave: dt.date | None = None
        self.probation = False
        self.user_id: int | None = None
        self.pace = 1.0

    def horizon(self, now: dt.datetime) -> dt.datetime:
        """The end of this person's working history: now, or 18:00 on their last day."""
        return min(now, _at(self.leave, 18)) if self.leave else now


@dataclass
class _Cust:
    """A customer being simulated; turned into a Customer row when its story is told."""

    id: int
    rep: _Emp
    created: dt.datetime
    kind: str
    name: str
    phone: str
    city: str
    region: str
    industry: str
    source: str
    channel: str
    contact_name: str
    contact_title: str
    touches: list[tuple[dt.datetime, Any]] = field(default_factory=list)  # (at, opp id or None)
    signs: list[tuple[dt.datetime, dt.date, Decimal]] = field(default_factory=list)
    collected: Decimal = Decimal("0.00")
    open_stage: int = 0  # order of the furthest stage of an open opportunity, 0 if none


@dataclass
class _Opp:
    id: int
    created: dt.datetime
    status: str = "open"
    closed: dt.datetime | None = None
    lines: list[tuple[Product, int]] = field(default_factory=list)


# --- The generator ------------------------------------------------------------------------------
class _Generator:
    def __init__(self, spec: Size, *, seed: int, today: dt.date, scale: float,
                 writer: _Writer) -> None:
        self.spec = spec
        self.scale = scale
        self.rng = random.Random(seed)
        self.w = writer
        self.today = today
        # The clock: midnight at the start of `today`, so nothing is ever in the real future.
        self.now = _at(today, 0)
        self.start = today - dt.timedelta(days=round(spec.months * 30.44))
        self.phones = _Phones(self.rng)
        self.ids: dict[Any, int] = {}
        for model in (Company, Department, Employee, Customer, Lead, Opportunity, Contract,
                      Instalment):
            self.ids[model] = (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
        self.numbers: dict[str, int] = defaultdict(int)
        self.names_used: set[str] = set()
        self.surnames = [s for s, _w in data.SURNAMES]
        self.surname_cum = []
        total = 0
        for _s, weight in data.SURNAMES:
            total += weight
            self.surname_cum.append(total)
        self.channels = [(s, c) for s, c, _w in data.LEAD_CHANNELS]
        self.channel_weights = [w for _s, _c, w in data.LEAD_CHANNELS]
        self.threshold = Decimal(settings.WEIYING.get("DISCOUNT_APPROVAL_THRESHOLD", "0.10"))
        self.depts: list[_Dept] = []
        self.emps: list[_Emp] = []
        self.teams: list[_Dept] = []
        self.finance: list[_Emp] = []
        self.operations: list[_Emp] = []
        self.logins: dict[str, _Emp] = {}

    # ids and names ------------------------------------------------------------------------
    def nid(self, model: Any) -> int:
        value = self.ids[model]
        self.ids[model] = value + 1
        return value

    def person(self) -> str:
        surname = self.rng.choices(self.surnames, cum_weights=self.surname_cum)[0]
        chars = data.GIVEN_CHARS
        given = self.rng.choice(chars)
        if self.rng.random() < 0.7:
            given += self.rng.choice(chars)
        return surname + given

    def company_name(self, city: str) -> tuple[str, str]:
        """A unique-looking company name: city + brand + line of business + 有限公司."""
        for attempt in range(8):
            if attempt < 3:
                brand = self.rng.choice(data.BRAND_WORDS)
            else:
                brand = self.rng.choice(data.BRAND_CHARS) + self.rng.choice(data.BRAND_CHARS)
            word, industry = self.rng.choice(data.INDUSTRIES)
            name = f"{city}{brand}{word}有限公司"
            if self.spec.streaming or name not in self.names_used:
                break
        self.names_used.add(name)
        return name, industry

    def number(self, prefix: str, moment: dt.datetime) -> str:
        stem = f"{prefix}{moment.astimezone(TZ):%Y%m}"
        self.numbers[stem] += 1
        return f"{stem}{self.numbers[stem]:06d}"

    def worktime(self, day: dt.date) -> dt.datetime:
        hour = self.rng.choice((9, 9, 10, 10, 10, 11, 11, 13, 14, 14, 15, 15, 16, 16, 17, 19, 20))
        return _at(day, hour, self.rng.randrange(60), self.rng.randrange(60))

    def later(self, moment: dt.datetime, low_days: float, high_days: float) -> dt.datetime:
        """A working-hours moment between low and high days after `moment`."""
        day = _local_date(moment + dt.timedelta(days=self.rng.uniform(low_days, high_days)))
        candidate = self.worktime(day)
        return candidate if candidate > moment else moment + dt.timedelta(
            minutes=self.rng.randint(5, 90))

    def upcoming(self, next_at: dt.datetime) -> dt.datetime:
        """Most reps keep their plans current: an open plan long overdue is usually
        rescheduled into the coming days (a few stay overdue, as in life)."""
        if next_at < self.now - 2 * DAY and self.rng.random() < 0.75:
            return self.worktime(self.today + dt.timedelta(days=self.rng.randint(0, 7)))
        return next_at

    def fanout(self, bounds: tuple[int, int], *, scaled: bool) -> int:
        n = self.rng.randint(*bounds)
        if scaled and self.scale != 1.0:
            levels = 6 if self.spec.provinces else 4
            n = max(1, round(n * self.scale ** (1 / levels)))
        return n

    # the run ------------------------------------------------------------------------------------
    def run(self) -> None:
        self.catalogue()
        self.organisation()
        self.users()
        self.w.flush()
        self.tags = self.make_tags()
        self.pipeline = Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.first()
        stages = list(Stage.objects.filter(pipeline=self.pipeline).order_by("order"))
        self.open_stages = [s for s in stages if s.kind == "open"]
        self.won_stage = next(s for s in stages if s.kind == "won")
        self.lost_stage = next(s for s in stages if s.kind == "lost")
        for team in self.teams:
            for rep in team.reps:
                self.rep_history(rep, team)
            self.w.maybe_flush()
        self.assignment_rules()

    # catalogue --------------------------------------------------------------------------------
    def catalogue(self) -> None:
        self.products: list[Product] = []
        for code, name, category, unit, price, rate, lifecycle, _ind in data.PRODUCTS:
            product, _created = Product.objects.update_or_create(code=code, defaults={
                "name": name, "category": category, "unit": unit, "list_price": Decimal(price),
                "vat_rate": rate, "lifecycle_days": lifecycle, "is_active": True,
                "standard_cost": money(Decimal(price) / (1 + Decimal(rate))
                                       * data.COST_SHARE[category]),
            })
            self.products.append(product)
        self.for_individuals = [p for p, row in zip(self.products, data.PRODUCTS, strict=True)
                                if row[7]]
        self.hardware = {p.code for p in self.products if p.vat_rate == data.G}

    def make_tags(self) -> list[Tag]:
        tags = []
        for name, group, color in data.TAGS:
            tag, _created = Tag.objects.get_or_create(name=name, defaults={"group": group,
                                                                            "color": color})
            tags.append(tag)
        return tags

    # organisation ----------------------------------------------------------------------------
    def dept(self, parent: _Dept | None, name: str, kind: str, city: str = "",
             region: str = "") -> _Dept:
        d = _Dept(self.nid(Department), parent, name, kind, city, region)
        self.depts.append(d)
        return d

    def emp(self, dept: _Dept, position: str, level: str, leader: _Emp | None, role: str, *,
            tenure: tuple[int, int] = (400, 3000)) -> _Emp:
        eid = self.nid(Employee)
        hire = self.today - dt.timedelta(days=self.rng.randint(*tenure))
        e = _Emp(eid, f"YF{eid:06d}", self.person(), dept, position, level, leader, role, hire,
                 self.phones.next())
        self.emps.append(e)
        return e

    def head(self, dept: _Dept, kind: str, leader: _Emp | None) -> _Emp:
        position, level, role = data.HEADS[kind]
        e = self.emp(dept, position, level, leader, role, tenure=(500, 3600))
        dept.head = e
        return e

    def organisation(self) -> None:
        spec = self.spec
        Company.objects.filter(departments__isnull=True).delete()
        self.company_id = self.nid(Company)
        self.w.new(Company, id=self.company_id, name=data.COMPANY_NAME, short_name="",
                   created_at=timezone.now())
        hq = self.dept(None, "总部", "hq", "上海", "")
        vp = self.head(hq, "hq", None)
        self.logins["admin"] = self.emp(hq, "系统管理员", "P3", vp, "admin")
        for region, cities in data.REGIONS[: max(1, self.fanout((spec.regions, spec.regions),
                                                                  scaled=True))]:
            branch = self.dept(hq, f"{region}大区", "branch", cities[0][0], region)
            director = self.head(branch, "branch", vp)
            parents: list[tuple[_Dept, _Emp, list[tuple[str, list[str]]]]]
            if spec.provinces:
                parents = []
                for i in range(self.fanout(spec.provinces, scaled=True)):
                    prov = self.dept(branch, f"{region}{data.PROVINCE_SUFFIXES[i % 6]}",
                                     "region", cities[i % len(cities)][0], region)
                    parents.append((prov, self.head(prov, "province", director), cities))
            else:
                parents = [(branch, director, cities)]
            for parent, boss, city_list in parents:
                n_cities = self.fanout(spec.cities, scaled=True)
                if not spec.provinces:
                    n_cities = min(n_cities, len(city_list))
                for i in range(n_cities):
                    city, districts = city_list[i % len(city_list)]
                    suffix = "" if i < len(city_list) else _cn(i // len(city_list) + 1)
                    cdept = self.dept(parent, f"{city}{suffix}分公司", "region", city, region)
                    self.city_tree(cdept, self.head(cdept, "region", boss), districts)
        self.support(hq)
        self.pick_logins()
        self.write_organisation()

    def city_tree(self, city: _Dept, boss: _Emp, districts: list[str]) -> None:
        spec = self.spec
        for i in range(self.fanout(spec.areas, scaled=True)):
            district = districts[i % len(districts)]
            suffix = "" if i < len(districts) else _cn(i // len(districts) + 1)
            area = self.dept(city, f"{city.city}{district}{suffix}区域", "area", city.city,
                             city.region)
            area_head = self.head(area, "area", boss)
            offices = [(area, area_head)]
            if spec.offices:
                offices = []
                for j in range(self.fanout(spec.offices, scaled=True)):
                    office = self.dept(area, f"{district}第{_cn(j + 1)}营业部", "area",
                                       city.city, city.region)
                    offices.append((office, self.head(office, "sub", area_head)))
            for parent, parent_head in offices:
                for j in range(self.fanout(spec.teams, scaled=True)):
                    team = self.dept(parent, f"{district}{_cn(j + 1)}组", "team", city.city,
                                     city.region)
                    lead = self.head(team, "team", parent_head)
                    self.staff_team(team, lead)
                    self.teams.append(team)

    def staff_team(self, team: _Dept, lead: _Emp) -> None:
        n = self.rng.randint(*self.spec.reps)
        for _ in range(n):
            position, level = self.rng.choice(data.REP_POSITIONS)
            rep = self.emp(team, position, level, lead, "rep", tenure=(20, 1500))
            if rep.hire > self.today - dt.timedelta(days=90):
                rep.probation = True
            rep.pace = self.rng.uniform(0.6, 1.5)
            team.reps.append(rep)
        # Leavers: people who worked in the team during the history and have gone.
        leavers = 1 if self.rng.random() < 0.55 else 0
        leavers += 1 if self.rng.random() < 0.2 else 0
        history = (self.today - self.start).days
        for _ in range(leavers):
            rep = self.emp(team, "销售代表", "P1", lead, "rep", tenure=(history, history + 600))
            rep.leave = self.start + dt.timedelta(days=self.rng.randint(25, max(26, history - 5)))
            rep.pace = self.rng.uniform(0.5, 1.2)
            team.reps.append(rep)

    def support(self, hq: _Dept) -> None:
        for name, count, positions, role, out in (
            ("财务部", self.spec.finance, data.FINANCE_POSITIONS, "finance", self.finance),
            ("运营部", self.spec.operations, data.OPERATIONS_POSITIONS, "operations",
             self.operations),
        ):
            dept = self.dept(hq, name, "other", "上海")
            boss = self.emp(dept, positions[0][0].replace("经理", "总监"), "M3", None, role)
            dept.head = boss
            out.append(boss)
            for i in range(max(1, round(count * min(1.0, self.scale ** 0.5))) - 1):
                position, level = positions[1 + i % (len(positions) - 1)]
                out.append(self.emp(dept, position, level, boss, role))

    def pick_logins(self) -> None:
        """Director of the first branch, a team lead under them, an experienced rep in that
        team (who gets a busier day), someone in finance and operations."""
        first_team = self.teams[0]
        branch = first_team.branch
        assert branch is not None and branch.head is not None and first_team.head is not None
        self.logins["director"] = branch.head
        self.logins["manager"] = first_team.head
        rep = next(r for r in first_team.reps if r.leave is None)
        rep.hire = min(rep.hire, self.start - dt.timedelta(days=200))
        rep.probation = False
        rep.pace = 2.5
        self.logins["rep"] = rep
        self.logins["finance"] = self.finance[1] if len(self.finance) > 1 else self.finance[0]
        self.logins["operations"] = self.operations[0]

    def write_organisation(self) -> None:
        for d in self.depts:
            self.w.new(Department,
                id=d.id, company_id=self.company_id, parent_id=d.parent.id if d.parent else None,
                name=d.name, kind=d.kind, city=d.city, region=d.region, path=d.path,
                depth=d.depth, manager_id=d.head.id if d.head else None,
                wecom_id=str(d.id), is_active=True,
            )

    def users(self) -> None:
        """Logins for the demo people; one password hash shared, computed once."""
        User = get_user_model()
        hashed = make_password(DEMO_PASSWORD)
        for role, username in LOGINS:
            e = self.logins[role]
            user = User(username=username, password=hashed, first_name=e.name[:150],
                        is_staff=role == "admin", is_superuser=role == "admin")
            user.save()
            e.user_id = user.pk
        roles = {r.code: r.pk for r in Role.objects.all()}
        for e in self.emps:
            self.w.new(Employee,
                id=e.id, number=e.number, name=e.name, department_id=e.dept.id,
                department_path=e.dept.path,
                position=e.position, level=e.level,
                leader_id=e.leader.id if e.leader else None, path=e.path, hire_date=e.hire,
                status="left" if e.leave else ("probation" if e.probation else "active"),
                leave_date=e.leave, phone=e.phone, email=f"{e.number.lower()}@{data.EMAIL_DOMAIN}",
                city=e.dept.city, user_id=e.user_id, role_id=roles[e.role],
                wecom_userid=e.number,
            )

    def assignment_rules(self) -> None:
        by_region: dict[str, _Dept] = {}
        for team in self.teams:
            by_region.setdefault(team.region, team)
        priority = 10
        for region, team in list(by_region.items())[:3]:
            self.w.new(AssignmentRule,
                name=f"{region}官网线索轮询", kind="region", priority=priority,
                match_region=region, team_id=team.id,
                last_assigned_id=team.reps[0].id if team.reps else None,
            )
            priority += 10
        expo = self.teams[-1]
        self.w.new(AssignmentRule, name="展会线索", kind="source", priority=5,
                                  match_source="exhibition", team_id=expo.id)
        self.w.new(AssignmentRule, name="默认轮询", kind="round_robin", priority=100,
                                  team_id=self.teams[0].id)
        self.w.flush()

    # history ---------------------------------------------------------------------------------------
    def months(self, begin: dt.date, end: dt.date) -> Iterator[tuple[dt.date, dt.date]]:
        cursor = begin
        while cursor < end:
            nxt = (cursor.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
            yield cursor, min(nxt, end)
            cursor = nxt

    def pick_day(self, begin: dt.date, end: dt.date) -> dt.date:
        span = (end - begin).days
        for _ in range(6):
            day = begin + dt.timedelta(days=self.rng.randrange(span))
            if self.rng.random() < data.WEEKDAY[day.weekday()]:
                return day
        return day

    def rep_history(self, rep: _Emp, team: _Dept) -> None:
        begin = max(self.start, rep.hire + dt.timedelta(days=3))
        end = rep.leave or self.today
        if begin >= end:
            return
        horizon = rep.horizon(self.now)
        # Customers brought over when the CRM was introduced (imported at the start).
        if rep.hire < self.start:
            legacy = self.spec.legacy_customers_per_rep * rep.pace
            for _ in range(int(legacy + self.rng.random())):
                moment = self.worktime(self.start + dt.timedelta(days=self.rng.randint(0, 6)))
                self.legacy_customer(rep, team, moment, horizon)
        for month_start, month_end in self.months(begin, end):
            weight = data.SEASON[month_start.month] * (month_end - month_start).days / 30.44
            expected = self.spec.leads_per_rep_month * rep.pace * weight
            for _ in range(int(expected + self.rng.random())):
                moment = self.worktime(self.pick_day(month_start, month_end))
                if moment < horizon:
                    self.lead(rep, team, moment, horizon)
        if rep is self.logins.get("rep"):
            self.busy_day(rep, team)

    def busy_day(self, rep: _Emp, team: _Dept) -> None:
        """The demo rep's phone should show new leads waiting for a first call."""
        for hours in (30, 20, 6):
            self.lead(rep, team, self.now - dt.timedelta(hours=hours), self.now, fresh=True)

    # leads -------------------------------------------------------------------------------------
    def lead(self, rep: _Emp, team: _Dept, created: dt.datetime, horizon: dt.datetime,
             *, fresh: bool = False) -> None:
        rng = self.rng
        lead_id = self.nid(Lead)
        source, channel = rng.choices(self.channels, weights=self.channel_weights)[0]
        if source == "exhibition":
            channel = f"展会·{rng.choice(data.EXHIBITIONS)}"
        is_company = rng.random() < 0.78
        person = self.person()
        company, industry = self.company_name(team.city) if is_company else ("", "个人")
        product = rng.choice(self.products if is_company else self.for_individuals)
        phone = self.phones.next()
        row = self.w.new(Lead,
            id=lead_id, name=person, company_name=company, phone=phone,
            wechat=f"wx_{phone[-6:]}{lead_id % 97}" if source in ("wecom", "oa") else "",
            city=team.city, region=team.region, source=source, channel=channel,
            interest=product.name, status="new", department_id=team.id, created_at=created,
            last_activity_at=created,
        )
        # 1. Assignment: the routing rules give most leads to a rep at once; the rest wait
        #    in the team's queue until the manager hands them out.
        if fresh or rng.random() < 0.7:
            assigned = created
        else:
            assigned = created + dt.timedelta(minutes=rng.randint(10, 20 * 60))
        if assigned >= horizon:
            return
        row.owner_id, row.status, row.assigned_at = rep.id, "assigned", assigned
        row.last_activity_at = assigned
        if fresh:
            return

        # 2. Touches, then an outcome.
        roll = rng.random()
        convert = {"referral": 0.42, "exhibition": 0.3, "wecom": 0.3}.get(source, 0.22)
        if roll < convert:
            outcome, count = "convert", rng.randint(1, 3)
        elif roll < convert + 0.36:
            outcome, count = "disqualify", rng.randint(1, 2)
        else:
            outcome, count = "nurture", rng.randint(1, 3)
        delay = rng.choice((0.02, 0.05, 0.1, 0.3, 0.5, 1, 2, 4, 8, 20, 30))  # hours
        moment = _awake(assigned + dt.timedelta(seconds=int(delay * 3600 * rng.uniform(0.5, 1.5))))
        touches: list[dt.datetime] = []
        while len(touches) < count and moment < horizon:
            touches.append(moment)
            moment = self.later(moment, 1, 8)
        if not touches:
            return
        row.status = "contacted"
        row.first_response_at = touches[0]
        row.first_response_seconds = max(0, int((touches[0] - assigned).total_seconds()))
        closing = _awake(touches[-1] + dt.timedelta(minutes=rng.randint(10, 2 * 24 * 60)))
        closes = len(touches) == count and outcome != "nurture" and closing < horizon
        if outcome == "nurture" and horizon - touches[-1] > dt.timedelta(days=45):
            # A lead left to cool is dismissed a month later (plan dismissed, then closed).
            closing = self.later(touches[-1], 25, 40)
            closes = closing < horizon
            outcome = "disqualify"
        kinds = ("call", "call", "wechat", "wechat", "wechat", "visit", "email")
        written = []
        for i, at in enumerate(touches):
            last = i == len(touches) - 1
            if not last:
                next_at = _between(at, touches[i + 1], rng.uniform(0.7, 1.1))
                done_at = touches[i + 1]
            elif closes and outcome == "convert":
                next_at, done_at = None, None
            else:
                next_at = self.later(at, 1, 6)
                done_at = closing if closes else None
                if done_at is None:
                    next_at = self.upcoming(next_at)
            note = rng.choice(data.NOTES["first" if i == 0 else "nurture"]).format(
                p=product.name.split("（")[0], n=person, t=rng.choice(data.CONTACT_TITLES),
                b=rng.randint(2, 60))
            written.append(self.followup(rep, at, note, kind=rng.choice(kinds),
                                         lead_id=lead_id, next_at=next_at, done_at=done_at))
        row.last_activity_at = touches[-1]
        if not closes:
            return
        row.last_activity_at = closing
        if outcome == "disqualify":
            reason = rng.choice(("invalid_contact", "no_need", "no_budget", "duplicate",
                                 "competitor", "no_need"))
            row.status, row.disqualify_reason = "disqualified", reason
            row.disqualify_note = rng.choice(data.NOTES["disqualified"]) if rng.random() < 0.4 else ""
            return
        # 3. Conversion: a customer (and usually an opportunity) at the same moment.
        row.status, row.converted_at = "converted", closing
        cust = _Cust(
            id=self.nid(Customer), rep=rep, created=closing,
            kind="company" if company else "individual", name=company or person, phone=phone,
            city=team.city, region=team.region, industry=industry, source=source,
            channel=channel, contact_name=person,
            contact_title=rng.choice(data.CONTACT_TITLES) if company else "",
        )
        row.customer_id = cust.id
        for fu in written:  # convert_lead links the lead's follow-ups to the new customer
            fu.customer_id = cust.id
        with_opp = rng.random() < 0.85
        opp_id = self.customer(cust, team, horizon, opp_at=closing if with_opp else None,
                               lead=row, interest=product)
        row.opportunity_id = opp_id

    def legacy_customer(self, rep: _Emp, team: _Dept, moment: dt.datetime,
                        horizon: dt.datetime) -> None:
        rng = self.rng
        is_company = rng.random() < 0.85
        person = self.person()
        name, industry = self.company_name(team.city) if is_company else (person, "个人")
        cust = _Cust(
            id=self.nid(Customer), rep=rep, created=moment,
            kind="company" if is_company else "individual", name=name,
            phone=self.phones.next(), city=team.city, region=team.region, industry=industry,
            source="import", channel="老客户导入", contact_name=person,
            contact_title=rng.choice(data.CONTACT_TITLES) if is_company else "",
        )
        opp_at = self.later(moment, 3, 60) if rng.random() < 0.7 else None
        self.customer(cust, team, horizon, opp_at=opp_at, lead=None, interest=None)

    # follow-ups ------------------------------------------------------------------------------
    def followup(self, owner: _Emp, at: dt.datetime, note: str, *, kind: str,
                 lead_id: int | None = None, customer_id: int | None = None,
                 opportunity_id: int | None = None, next_at: dt.datetime | None = None,
                 done_at: dt.datetime | None = None) -> _Row:
        """`done_at`: when the plan in `next_at` was superseded (None: still open)."""
        reminded = None
        if next_at is not None:
            tick = _reminder_tick(next_at)
            if tick < (done_at or self.now):
                reminded = tick
        row = self.w.new(FollowUp,
            kind=kind, customer_id=customer_id, lead_id=lead_id, opportunity_id=opportunity_id,
            owner_id=owner.id, note=note, at=at, next_at=next_at,
            next_done=next_at is not None and done_at is not None, reminded_at=reminded,
            created_at=at,
        )
        return row

    def note(self, group: str, cust: _Cust, product: Product | None = None,
             budget: Decimal | None = None) -> str:
        template = self.rng.choice(data.NOTES[group])
        return template.format(
            p=(product or self.rng.choice(self.products)).name.split("（")[0],
            t=cust.contact_title or "客户", n=cust.contact_name,
            b=str(int((budget or Decimal(self.rng.randint(5, 80) * 10000)) / 10000) or 1),
        )

    # customers -----------------------------------------------------------------------------
    def customer(self, cust: _Cust, team: _Dept, horizon: dt.datetime, *,
                 opp_at: dt.datetime | None, lead: _Row | None,
                 interest: Product | None) -> int | None:
        """Tell a customer's story from creation to the clock; returns the first
        opportunity's id (for the lead that made it)."""
        rng = self.rng
        rep = cust.rep
        opps: list[_Opp] = []
        recycle_at: dt.datetime | None = None
        reason = ""
        first_opp_id = None
        idle_from = cust.created + RECYCLE_NO_OPPORTUNITY
        won = False
        cursor = opp_at
        previous_close = cust.created
        while cursor is not None and cursor < horizon:
            # The nightly job recycles a customer with no open or won opportunity once it has
            # been held 90 days; a later opportunity would come too late.
            run = _next_run(max(previous_close, idle_from))
            if not won and run < cursor:
                recycle_at, reason = run, IDLE
                break
            opp = self.opportunity(cust, team, cursor, horizon, lead=lead if not opps else None,
                                   interest=interest if not opps else None,
                                   renewal=bool(opps))
            opps.append(opp)
            first_opp_id = first_opp_id or opp.id
            if opp.status == "open":
                break
            previous_close = opp.closed or cursor
            cursor = None
            if opp.status == "won":
                won = True
                cycles = [p.lifecycle_days for p, _q in opp.lines if p.lifecycle_days]
                if cycles:
                    cursor = self.later(previous_close, min(cycles) - 40, min(cycles) - 20)
                elif rng.random() < 0.25:
                    cursor = self.later(previous_close, 60, 200)
            elif rng.random() < 0.6:
                cursor = self.later(previous_close, 15, 75)
        if recycle_at is None and not won and not (opps and opps[-1].status == "open"):
            moment = _next_run(max(previous_close, idle_from))
            if moment < self.now:
                recycle_at, reason = moment, IDLE

        # Care touches between the opportunity's own, never more than four weeks apart while
        # the rep looks after the customer; some customers are let go.
        stop = recycle_at or horizon
        settled = not opps or opps[-1].status != "open"
        if rep.leave is None and not won and settled and rng.random() < 0.1:
            drop = self.later(previous_close, 5, 120)
            stop = min(stop, drop)
        planned = sorted(t for t, _o in cust.touches if t < stop)
        cursor_t = cust.created
        care: list[dt.datetime] = []
        for at in [*planned, stop]:
            while at - cursor_t > dt.timedelta(days=26):
                cursor_t = self.later(cursor_t, 9, 24)
                if cursor_t >= stop:
                    break
                care.append(cursor_t)
            cursor_t = max(cursor_t, at)
        cust.touches = [(t, o) for t, o in cust.touches if t < stop] + [(t, None) for t in care]
        cust.touches.sort(key=lambda x: x[0])
        clock = cust.touches[-1][0] if cust.touches else cust.created
        if recycle_at is None:
            stale = _next_run(clock + RECYCLE_NO_FOLLOWUP)
            if stale < self.now:
                recycle_at, reason = stale, STALE

        self.write_customer(cust, team, recycle_at, reason)
        return first_opp_id

    def write_customer(self, cust: _Cust, team: _Dept, recycle_at: dt.datetime | None,
                       reason: str) -> None:
        rng = self.rng
        rep = cust.rep
        # Follow-ups on the customer: each supersedes the previous plan.
        last_followup = None
        next_plan = None
        touches = cust.touches
        for i, (at, opp_id) in enumerate(touches):
            following = touches[i + 1][0] if i + 1 < len(touches) else None
            if following is not None:
                next_at = _between(at, following, rng.uniform(0.6, 1.2))
                if next_at <= at:
                    next_at = at + HOUR
            else:
                next_at = self.upcoming(self.later(at, 2, 18))
                if rep is self.logins.get("rep") and recycle_at is None and i % 2 == 0:
                    next_at = max(next_at, self.worktime(self.today))  # due today on the phone
                next_plan = next_at
            group = "care" if opp_id is None else "discovery"
            self.followup(rep, at, self.note(group, cust), kind=rng.choice(
                ("call", "wechat", "wechat", "visit", "meeting")), customer_id=cust.id,
                opportunity_id=opp_id, next_at=next_at, done_at=following)
            last_followup = at
        # Recycle warnings: the nightly job warns once per stretch of neglect.
        warned = None
        if recycle_at is None:
            points = [cust.created] + [t for t, _o in touches] + [self.now]
            for a, b in zip(points, points[1:], strict=False):
                run = _next_run(a + RECYCLE_NO_FOLLOWUP - RECYCLE_WARNING)
                if run < b and run < self.now:
                    warned = run
        activity = max([cust.created] + [t for t, _o in touches] + [s for s, _d, _t in cust.signs])
        status = "new"
        if touches:
            status = "contacted"
        if cust.signs:
            status = "signed"
        elif cust.open_stage:
            status = "negotiating" if cust.open_stage >= 3 else "interested"
        total_signed = sum((t for _s, _d, t in cust.signs), Decimal("0.00"))
        level = "A" if total_signed >= 200_000 else ("B" if total_signed or cust.kind == "company"
                                                     else "C")
        in_pool = recycle_at is not None
        self.w.new(Customer,
            id=cust.id, kind=cust.kind, name=cust.name, name_key=name_key(cust.name),
            phone=cust.phone, industry=cust.industry, city=cust.city, region=cust.region,
            address=f"{cust.city}{rng.choice(data.STREETS)}{rng.randint(1, 999)}号",
            source=cust.source, channel=cust.channel, level=level, status=status,
            owner_id=None if in_pool else rep.id, department_id=team.id, in_pool=in_pool,
            pool_department_id=team.branch.id if in_pool and team.branch else None,
            owned_since=None if in_pool else cust.created, released_at=recycle_at,
            recycle_warned_at=warned, last_followup_at=last_followup,
            next_followup_at=next_plan, last_activity_at=activity,
            total_signed=total_signed, total_collected=cust.collected,
            last_purchase_at=max((d for _s, d, _t in cust.signs), default=None),
            created_at=cust.created,
            updated_at=max(activity, recycle_at or activity),
        )
        self.w.new(OwnershipChange, customer_id=cust.id, action="create", to_owner_id=rep.id,
                                   by_id=rep.id, at=cust.created)
        if recycle_at is not None:
            self.w.new(OwnershipChange, customer_id=cust.id, action="recycle",
                                       from_owner_id=rep.id, reason=reason, at=recycle_at)
        self.w.new(Contact, customer_id=cust.id, name=cust.contact_name, title=cust.contact_title,
                           phone=cust.phone, is_primary=True)
        if cust.kind == "company":
            for _ in range(rng.choice((0, 0, 1, 1, 2))):
                self.w.new(Contact, customer_id=cust.id, name=self.person(),
                                   title=rng.choice(data.CONTACT_TITLES),
                                   phone=self.phones.next())
        if cust.source == "wecom":
            self.w.new(WeChatIdentity, customer_id=cust.id, kind="wecom_external",
                                      value=f"wm{rng.getrandbits(120):030x}",
                                      created_at=cust.created)
        if rng.random() < 0.3:
            through = Customer.tags.through
            for tag in rng.sample(self.tags, rng.randint(1, 2)):
                self.w.new(through, customer_id=cust.id, tag_id=tag.pk)

    # opportunities ---------------------------------------------------------------------------
    def pick_lines(self, cust: _Cust, interest: Product | None) -> list[tuple[Product, int]]:
        rng = self.rng
        pool = self.products if cust.kind == "company" else self.for_individuals
        chosen = [interest] if interest is not None and interest in pool else []
        for p in rng.sample(pool, rng.choice((0, 1, 1, 2))):
            if p not in chosen:
                chosen.append(p)
        if not chosen:
            chosen = [rng.choice(pool)]
        lines = []
        for p in chosen:
            low, high = data.QUANTITIES.get(p.code, (1, 3))
            if cust.kind == "individual":
                low, high = 1, max(1, min(high, 3))
            lines.append((p, rng.randint(low, high)))
        return lines

    def opportunity(self, cust: _Cust, team: _Dept, created: dt.datetime,
                    horizon: dt.datetime, *, lead: _Row | None, interest: Product | None,
                    renewal: bool) -> _Opp:
        rng = self.rng
        rep = cust.rep
        opp = _Opp(id=self.nid(Opportunity), created=created,
                   lines=self.pick_lines(cust, interest))
        amounts = [money(p.list_price * q) for p, q in opp.lines]
        amount = sum(amounts, Decimal("0.00"))
        main = opp.lines[0][0].name.split("（")[0]
        if lead is not None and lead.interest:
            name = f"{cust.name} · {lead.interest}"[:128]
        else:
            name = f"{cust.name} · {'续费/增购 ' if renewal else ''}{main}"[:128]
        roll = rng.random()
        final = "won" if roll < (0.55 if renewal else 0.42) else (
            "lost" if roll < 0.76 else "stall")
        stages = self.open_stages
        if final == "won":
            path = [s for s in stages if s.order == 1 or rng.random() < 0.85]
        else:
            path = stages[: rng.randint(1, len(stages))]
        changes = [(None, path[0], created, rep)]
        at = created
        status, closed, lost_reason, note = "open", None, "", ""
        stage = path[0]
        expected = _local_date(created) + dt.timedelta(days=rng.randint(20, 90))
        for i, stage in enumerate(path):
            dwell = rng.uniform(2, 18) if final != "stall" else rng.uniform(10, 50)
            leave_stage = _awake(at + dt.timedelta(seconds=int(dwell * 86400)))
            touch = _awake(_between(at, leave_stage, rng.uniform(0.15, 0.7)))
            if touch >= leave_stage:
                touch = leave_stage - dt.timedelta(minutes=30)
            if touch < horizon:
                cust.touches.append((touch, opp.id))
            if leave_stage >= horizon:
                break
            if i + 1 < len(path):
                changes.append((stage, path[i + 1], leave_stage, rep))
                at = leave_stage
                continue
            if final == "stall":
                # A deal that stalls is written off after a few quiet months.
                give_up = self.later(leave_stage, 60, 120)
                if give_up < horizon:
                    status, closed, lost_reason = "lost", give_up, "no_decision"
                    note = rng.choice(data.NOTES["lost"])
                    changes.append((stage, self.lost_stage, give_up, rep))
                break
            status, closed = final, leave_stage
            if final == "lost":
                lost_reason = rng.choice(("price", "competitor", "no_budget", "timing",
                                          "product_fit", "price"))
                note = rng.choice(data.NOTES["lost"])
            else:
                note = rng.choice(data.NOTES["won"])
            changes.append((stage, self.won_stage if final == "won" else self.lost_stage,
                            leave_stage, rep))
            break
        if status == "open" and rep.leave is not None and team.head is not None:
            # The manager closes the deals of a rep who left.
            closed = _at(rep.leave, 18, 30)
            status, lost_reason, note = "lost", "other", "负责销售已离职，商机关闭"
            changes.append((changes[-1][1], self.lost_stage, closed, team.head))
        opp.status, opp.closed = status, closed
        if status == "open":
            cust.open_stage = max(cust.open_stage, changes[-1][1].order)
        final_stage = changes[-1][1]
        stage_entered = changes[-1][2]
        touches = [t for t, o in cust.touches if o == opp.id]
        self.w.new(Opportunity,
            id=opp.id, name=name, customer_id=cust.id, pipeline_id=self.pipeline.pk,
            stage_id=final_stage.pk, status=status, amount=amount, expected_close=expected,
            owner_id=rep.id, department_id=team.id, lead_id=lead.id if lead else None,
            stage_entered_at=stage_entered, closed_at=closed, lost_reason=lost_reason,
            close_note=note, last_activity_at=max([stage_entered, *touches]), created_at=created,
        )
        for (p, q), line_amount in zip(opp.lines, amounts, strict=True):
            self.w.new(OpportunityLine, opportunity_id=opp.id, product_id=p.pk, quantity=q,
                                       amount=line_amount)
        previous = None
        for from_stage, to_stage, moment, by in changes:
            self.w.new(StageChange,
                opportunity_id=opp.id, from_stage_id=from_stage.pk if from_stage else None,
                to_stage_id=to_stage.pk, at=moment, by_id=by.id,
                seconds_in_previous=None if previous is None else max(
                    0, int((moment - previous).total_seconds())),
            )
            previous = moment
        if status == "won" and closed is not None:
            self.contract(cust, team, opp, name, closed)
        return opp

    # contracts ----------------------------------------------------------------------------------
    def contract(self, cust: _Cust, team: _Dept, opp: _Opp, title: str,
                 won_at: dt.datetime) -> None:
        rng = self.rng
        rep = cust.rep
        contract_id = self.nid(Contract)
        created = won_at + dt.timedelta(minutes=rng.randint(20, 300))
        if created >= self.now:
            return
        lines = []
        for p, q in opp.lines:
            discount = rng.choice(data.DISCOUNTS) if cust.kind == "company" else Decimal("0")
            amount = money(Decimal(q) * p.list_price * (Decimal(1) - discount))
            net, vat = split_vat(amount, p.vat_rate)
            lines.append(self.w.new(ContractLine,
                contract_id=contract_id, product_id=p.pk, description="", quantity=q,
                unit_price=p.list_price, discount=discount, vat_rate=p.vat_rate,
                amount=amount, net=net, vat=vat,
            ))
        total = sum((ln.amount for ln in lines), Decimal("0.00"))
        row = self.w.new(Contract,
            id=contract_id, number=self.number("HT", created), title=title[:128],
            customer_id=cust.id, opportunity_id=opp.id, owner_id=rep.id, department_id=team.id,
            status="draft", total=total,
            total_net=sum((ln.net for ln in lines), Decimal("0.00")),
            total_vat=sum((ln.vat for ln in lines), Decimal("0.00")),
            max_discount=max(ln.discount for ln in lines), created_at=created,
            approved_at=None, delivered_on=None, accepted_on=None,
            updated_at=created,
        )
        # draft → submitted (auto-approved up to the threshold) → approved → signed.
        submitted = created + dt.timedelta(minutes=rng.randint(10, 180))
        if submitted >= self.now:
            return
        row.submitted_at = row.updated_at = submitted
        if row.max_discount <= self.threshold:
            row.status, row.approved_at = "approved", submitted
        else:
            row.status = "pending_approval"
            approved = self.later(submitted, 0, 2)
            if approved >= self.now:
                return
            row.status, row.approved_at, row.approved_by_id = "approved", approved, team.head.id
            row.updated_at = approved
        signed_at = self.later(row.approved_at, 0, 6)
        if rng.random() < 0.03:
            cancelled = self.later(row.approved_at, 3, 15)
            if cancelled < self.now:
                row.status, row.cancel_reason = "cancelled", "客户内部预算冻结，项目取消"
                row.updated_at = cancelled
            return
        if signed_at >= self.now:
            return
        signed_on = _local_date(signed_at)
        row.status, row.signed_on, row.start_on = "signed", signed_on, signed_on
        row.updated_at = signed_at
        if any(p.lifecycle_days for p, _q in opp.lines):
            row.end_on = signed_on + dt.timedelta(days=364)
        cust.signs.append((signed_at, signed_on, total))
        goods = any(p.code in self.hardware for p, _q in opp.lines)
        plan_delivery = signed_on + dt.timedelta(days=rng.randint(5, 25) if goods
                                                 else rng.randint(2, 10))
        plan_accept = plan_delivery + dt.timedelta(days=rng.randint(3, 20))
        last_day = self.today - DAY
        if plan_delivery <= last_day:
            row.status, row.delivered_on = "in_delivery", plan_delivery
            row.updated_at = _at(plan_delivery, 17)
            if plan_accept <= last_day:
                row.accepted_on = plan_accept
                row.updated_at = _at(plan_accept, 17)
        # The collection plan: one payment for small contracts, 30/60/10 for large ones.
        if total < 30_000:
            plan = [(signed_on + dt.timedelta(days=15), total)]
        else:
            parts = allocate(total, [Decimal(3), Decimal(6), Decimal(1)])
            plan = [(signed_on + dt.timedelta(days=10), parts[0]),
                    (plan_delivery + dt.timedelta(days=15), parts[1]),
                    (plan_accept + dt.timedelta(days=30), parts[2])]
        collected = Decimal("0.00")
        last_receipt = None
        payers = self.finance
        for seq, (due, amount) in enumerate(plan, start=1):
            inst_id = self.nid(Instalment)
            paid = Decimal("0.00")
            roll = rng.random()
            received = due + dt.timedelta(days=rng.randint(-6, 20))
            received = max(received, signed_on)
            if received <= last_day and roll < 0.9:
                paid = amount if roll < 0.84 else money(amount / 2)
                self.w.new(Receipt,
                    contract_id=contract_id, instalment_id=inst_id, amount=paid,
                    received_on=received,
                    method=rng.choice(("bank", "bank", "bank", "wechat_pay", "alipay")),
                    reference=f"BK{received:%Y%m%d}{rng.randint(100000, 999999)}",
                    recorded_by_id=rng.choice(payers).id,
                    created_at=_at(received, rng.randint(10, 18), rng.randrange(60)),
                )
                last_receipt = max(last_receipt or received, received)
            self.w.new(Instalment, id=inst_id, contract_id=contract_id, seq=seq, due_on=due,
                                  amount=amount, collected=paid)
            collected += paid
        row.collected = collected
        cust.collected += collected
        if row.accepted_on is not None:
            done = max(row.accepted_on, last_receipt or row.accepted_on)
            if collected == total and done <= last_day:
                row.status, row.completed_on = "completed", done
                row.updated_at = _at(done, 18)
        if row.delivered_on is not None and rng.random() < 0.25:
            self.ticket(cust, team, contract_id, row.delivered_on)

    # service tickets ----------------------------------------------------------------------------
    def ticket(self, cust: _Cust, team: _Dept, contract_id: int, delivered: dt.date) -> None:
        rng = self.rng
        opened = self.worktime(delivered + dt.timedelta(days=rng.randint(2, 150)))
        if opened >= self.now:
            return
        priority = rng.choices(("low", "normal", "high", "urgent"), weights=(2, 6, 3, 1))[0]
        respond_h, resolve_h = data.TICKET_SLA_HOURS[priority]
        # Limitation: the ticket goes to the rep holding the customer when it is opened,
        # read here as the rep of the sale (a customer recycled since still names them).
        owner, department = cust.rep, team
        if cust.rep.leave is not None and _at(cust.rep.leave, 18) < opened:
            owner = rng.choice(self.operations)
            department = owner.dept
        row = self.w.new(Ticket,
            number=self.number("GD", opened), customer_id=cust.id, contract_id=contract_id,
            title=rng.choice(data.TICKET_TITLES), description="客户来电反馈，已记录现象和联系方式。",
            priority=priority, status="open", owner_id=owner.id, department_id=department.id,
            opened_at=opened, respond_by=opened + dt.timedelta(hours=respond_h),
            resolve_by=opened + dt.timedelta(hours=resolve_h),
        )
        responded = opened + dt.timedelta(seconds=int(respond_h * 3600 * rng.uniform(0.1, 1.4)))
        if responded < self.now:
            row.status, row.responded_at = "in_progress", responded
            if rng.random() < 0.1:
                row.status = "waiting"
            resolved = responded + dt.timedelta(
                seconds=int(resolve_h * 3600 * rng.uniform(0.2, 1.3)))
            if resolved < self.now:
                row.status, row.resolved_at = "resolved", resolved
                row.resolution = "远程排查后已处理，客户确认恢复正常。"
                closed = resolved + dt.timedelta(hours=rng.randint(2, 72))
                if closed < self.now:
                    row.status, row.closed_at = "closed", closed
