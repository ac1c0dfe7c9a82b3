"""Finance benchmarks: seed (or reuse) a year of finance rows over the benchmark company's
signed contracts, then time the monthly close over ~1,000,000 obligations and the bridge
report for a director's subtree beside hand-written SQL.

    uv run python -m bench.finance [--db postgres|sqlite] [--size xl] [--scale X]

The company is bench/run.py's (same database, reused as it is; generated only when missing).
The seed is idempotent: a `bench.finance_seed` audit row with the same figures means the
rows are there. Seeding books each month in order with the finance layer's own arithmetic:
the month's receipts and acceptances (weiying.finance.ledger.receive/accept on the
obligations as they stand), then `close.close_period` for that month, so the service months
are booked by the close itself. The last month is left open for the close benchmark, which
runs in a transaction rolled back afterwards. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from bench import run
from bench.run import HERE, Row

SEED_ACTION = "bench.finance_seed"
SERVICE_RATE = Decimal("0.06")
GOODS_RATE = Decimal("0.13")
COST_SHARE = Decimal("0.4")
# One obligation in GOODS_EVERY is goods, the next one a milestone; the rest are services.
GOODS_EVERY = 25


# --- Set-up ---------------------------------------------------------------------------------
def _configure(args: argparse.Namespace) -> str:
    keep = os.environ.get("WEIYING_DATA_DIR")
    tag = run._configure(args)
    if keep:  # a caller's own data folder wins over bench/.data/<tag>
        os.environ["WEIYING_DATA_DIR"] = keep
    return tag


def _months(today: dt.date) -> list[tuple[int, int]]:
    """The twelve whole months before `today`'s month, oldest first."""
    out = []
    y, m = today.year, today.month
    for _ in range(12):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        out.append((y, m))
    return out[::-1]


def _first(ym: tuple[int, int]) -> dt.date:
    return dt.date(ym[0], ym[1], 1)


def _last(ym: tuple[int, int]) -> dt.date:
    from weiying.finance.close import _month_end

    return _month_end(*ym)


# --- Bulk writes ----------------------------------------------------------------------------
def _copy(table: str, columns: Iterable[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert rows with COPY on PostgreSQL (executemany elsewhere); returns the count."""
    from django.db import connection

    cols = list(columns)
    names = ", ".join(f'"{c}"' for c in cols)
    n = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
            return n
        marks = ", ".join(["%s"] * len(cols))
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                n += len(batch)
                batch = []
        if batch:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
            n += len(batch)
    return n


def _sql(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return run._sql(sql, params or [])


def _execute(sql: str, params: list[Any] | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


# --- The seed -------------------------------------------------------------------------------
def _seeded(n: int) -> dict[str, Any] | None:
    from weiying.core.models import AuditLog

    row = AuditLog.objects.filter(action=SEED_ACTION).order_by("-pk").first()
    if row is not None and row.after.get("obligations") == n:
        return dict(row.after)
    return None


def _contracts() -> list[tuple[int, int | None, int | None, int, str]]:
    """Signed contracts: (id, department, owner, customer, channel as ledger._channel)."""
    return [tuple(r) for r in _sql(  # type: ignore[misc]
        """SELECT c.id, c.department_id, c.owner_id, c.customer_id,
                  LEFT(COALESCE(NULLIF(cu.channel, ''), cu.source, ''), 64)
           FROM pipeline_contract c JOIN customers_customer cu ON cu.id = c.customer_id
           WHERE c.status IN ('signed', 'in_delivery', 'completed') AND c.signed_on IS NOT NULL
           ORDER BY c.id""")]


def _products() -> tuple[int, int, int]:
    """(a service product, a goods product, a milestone product): by fulfilment if the
    catalogue says, else by VAT rate (13 % is hardware)."""
    from weiying.catalog.models import Product

    def pick(fulfilment: str, rate: Decimal) -> int:
        qs = Product.objects.order_by("pk")
        found = (qs.filter(fulfilment=fulfilment).first() or qs.filter(vat_rate=rate).first()
                 or qs.first())
        if found is None:
            raise LookupError("the company has no products")
        return found.pk

    return pick("service", SERVICE_RATE), pick("goods", GOODS_RATE), pick("milestone",
                                                                          SERVICE_RATE)


_OB_COLUMNS = ("contract_id", "product_id", "seq", "fulfilment", "quantity",
               "accepted_quantity", "vat_rate", "ssp", "gross", "net", "vat", "cost", "start_on",
               "end_on", "recognised_gross", "recognised_vat", "cost_booked", "paid_gross",
               "released_gross", "status", "department_id", "owner_id", "customer_id", "channel")


def _obligation_rows(n: int, months: list[tuple[int, int]], seed: int,
                     contracts: list[tuple[int, int | None, int | None, int, str]],
                     products: tuple[int, int, int]) -> Iterable[tuple[Any, ...]]:
    """The obligations' rows, made lazily while COPY reads them (so read nothing here)."""
    from weiying.core.money import money, split_vat
    from weiying.finance.recognition import service_end

    if not contracts:
        raise LookupError("no signed contracts to hang obligations on")
    per = -(-n // len(contracts))
    service, goods, milestone = products
    rng = random.Random(seed)
    first, last = _first(months[0]), _last(months[-1])
    span = (last - first).days + 1
    zero = Decimal("0.00")
    for i in range(n):
        cid, dept, owner, customer, channel = contracts[i // per]
        kind = i % GOODS_EVERY
        gross = Decimal(rng.randrange(100_000, 10_000_001)) / 100
        if kind == 0:
            fulfilment, product, rate, start, end = "goods", goods, GOODS_RATE, None, None
        else:
            fulfilment, product, rate = (("milestone", milestone, SERVICE_RATE) if kind == 1
                                         else ("service", service, SERVICE_RATE))
            start = end = None
            if fulfilment == "service":
                start = first + dt.timedelta(days=rng.randrange(span))
                end = service_end(start, 12)
        net, vat = split_vat(gross, rate)
        yield (cid, product, i % per + 1, fulfilment, Decimal(1), Decimal(0), rate, gross,
               gross, net, vat, money(net * COST_SHARE), start, end, zero, zero, zero, zero,
               zero, "open", dept, owner, customer, channel)


_STATE = ("id", "contract_id", "product_id", "fulfilment", "quantity", "accepted_quantity",
          "gross", "net", "vat", "cost", "start_on", "end_on", "recognised_gross",
          "recognised_vat", "cost_booked", "paid_gross", "released_gross", "status",
          "department_id", "owner_id", "customer_id", "channel")


def _events(ob: Any, j: int, months: list[tuple[int, int]]) -> list[tuple[dt.date, str, Any]]:
    """What happens to `ob` in month j: [(day, 'receipt'|'accept', amount)], in order.

    Services: ids ending 0–5 pay the year ahead on the start day; 6–7 half on the start day
    and the rest six months on; 8 pays everything three months after the start (the
    receivable first, the rest ahead); 9 never pays. Goods and milestones (event month =
    id mod 12, day 1 + id mod 28): 30 % ahead, accepted the same day, the rest a month on."""
    from weiying.core.money import money
    from weiying.finance.recognition import add_months

    ym = months[j]
    out: list[tuple[dt.date, str, Any]] = []
    if ob.fulfilment == "service":
        start, tail = ob.start_on, ob.pk % 10
        if (start.year, start.month) == ym and tail <= 5:
            out.append((start, "receipt", ob.gross))
        elif (start.year, start.month) == ym and tail in (6, 7):
            out.append((start, "receipt", money(ob.gross / 2)))
        second = add_months(start, 6)
        if (second.year, second.month) == ym and tail in (6, 7):
            out.append((second, "receipt", ob.gross - ob.paid_gross))
        third = add_months(start, 3)
        if (third.year, third.month) == ym and tail == 8:
            out.append((third, "receipt", ob.gross))
        return out
    day = dt.date(ym[0], ym[1], 1 + ob.pk % 28)
    if ob.pk % 12 == j:
        advance = money(ob.gross * Decimal("0.3"))
        out += [(day, "receipt", advance), (day, "accept", ob.quantity)]
    elif ob.pk % 12 == j - 1:
        out.append((day, "receipt", ob.gross - ob.paid_gross))
    return out


_MV_COLUMNS = ("obligation_id", "contract_id", "voucher_id", "kind", "on", "event_on",
               "bank", "receivable", "contract_liability", "pending_vat", "refund_payable",
               "revenue", "output_vat", "cost", "department_id", "owner_id", "customer_id",
               "product_id", "channel")


class _Year:
    """A year of one obligation's life, month by month in order: the month's receipts and
    acceptances through weiying.finance.ledger (receive/accept), then — for months 0–10 —
    the service month exactly as close._service_piece books it and close._apply moves the
    totals. The service parts are computed once per obligation (recognition.service_parts,
    the same function service_due_through sums), not once per month."""

    def __init__(self, months: list[tuple[int, int]], receipt_vouchers: list[int],
                 close_vouchers: list[int]) -> None:
        from weiying.core.money import ZERO

        self.months = months
        self.receipt_vouchers = receipt_vouchers
        self.close_vouchers = close_vouchers
        self.ends = [_last(ym) for ym in months]
        self.receipt_totals: list[dict[tuple[str, Any], Decimal]] = [
            defaultdict(lambda: ZERO) for _ in months]
        self.close_totals: list[dict[tuple[str, Any], Decimal]] = [
            defaultdict(lambda: ZERO) for _ in close_vouchers]
        self.closed = [0] * len(close_vouchers)
        self.checked = 0

    def live(self, ob: Any, check: bool) -> list[tuple[Any, ...]]:
        from weiying.core.money import ZERO
        from weiying.finance import close, ledger
        from weiying.finance.models import BALANCE_COLUMNS
        from weiying.finance.recognition import service_parts, share_of, vat_of

        rows: list[tuple[Any, ...]] = []
        due: dict[tuple[int, int], Decimal] = {}
        if ob.fulfilment == "service":
            running = ZERO
            for ym, part in service_parts(ob.gross, ob.start_on, ob.end_on):
                running += part
                due[ym] = running
        dims = (ob.department_id, ob.owner_id, ob.customer_id, ob.product_id, ob.channel)
        for j, ym in enumerate(self.months):
            for day, what, amount in _events(ob, j, self.months):
                pieces = (ledger.receive([ob], amount) if what == "receipt"
                          else [p for p in [ledger.accept(ob, amount)] if p is not None])
                totals = self.receipt_totals[j]
                for p in pieces:
                    if not p.nonzero():
                        continue
                    for column, value in p.amounts.items():
                        totals[(column, None)] += value
                        if column == "cost":
                            role = "inventory" if ob.fulfilment == "goods" else "fulfilment_cost"
                            totals[(f"cost_credit:{role}", None)] += value
                    rows.append((ob.pk, ob.contract_id, self.receipt_vouchers[j], p.kind, day,
                                 day, *(p.amounts.get(c, ZERO) for c in BALANCE_COLUMNS), *dims))
            if (j >= len(self.close_vouchers) or ob.fulfilment != "service"
                    or ob.status != "open" or ob.start_on > self.ends[j]):
                continue
            gross, vat, cost = ob.gross, ob.vat, ob.cost
            r0, paid = ob.recognised_gross, ob.paid_gross
            end_ym = (ob.end_on.year, ob.end_on.month)
            r1 = gross if ym >= end_ym else due.get(ym, ZERO)
            if check:  # the close's own arithmetic must agree
                row = {"gross": gross, "vat": vat, "cost": cost, "recognised_gross": r0,
                       "recognised_vat": ob.recognised_vat, "cost_booked": ob.cost_booked,
                       "paid_gross": paid, "start_on": ob.start_on, "end_on": ob.end_on}
                theirs = close._service_piece(row, *ym)
                self.checked += 1
            if r1 <= r0:
                piece = None
            else:
                v = vat_of(r1, gross, vat) - vat_of(r0, gross, vat)
                piece = defaultdict(lambda: ZERO)
                piece["revenue"] = (r1 - r0) - v
                piece["output_vat"] = v
                if paid > r0:
                    upto = min(paid, r1)
                    covered = vat_of(upto, gross, vat) - vat_of(r0, gross, vat)
                    piece["contract_liability"] = -((upto - r0) - covered)
                    piece["pending_vat"] = -covered
                owed = r1 - max(paid, r0)
                if owed > 0:
                    piece["receivable"] = owed
                piece["cost"] = share_of(r1, gross, cost) - share_of(r0, gross, cost)
            if check and (None if theirs is None else dict(theirs)) != (
                    None if piece is None else dict(piece)):
                raise AssertionError(f"obligation {ob.pk} {ym}: close says {theirs}, "
                                     f"the seed {piece}")
            if piece is None:
                continue
            totals = self.close_totals[j]
            dept = ob.department_id
            for column, amount in piece.items():
                totals[(column, dept)] += amount
            totals[("cost_credit:fulfilment_cost", dept)] += piece["cost"]
            end = self.ends[j]
            rows.append((ob.pk, ob.contract_id, self.close_vouchers[j], "service_month", end,
                         end, *(piece.get(c, ZERO) for c in BALANCE_COLUMNS), *dims))
            self.closed[j] += 1
            ob.recognised_gross += piece["revenue"] + piece["output_vat"]
            ob.recognised_vat += piece["output_vat"]
            ob.cost_booked += piece["cost"]
            if ob.recognised_gross + ob.released_gross >= ob.gross:
                ob.status = "satisfied"
        return rows


def seed(n: int, data_date: dt.date, seed_value: int,
         chunk: int = 50_000) -> tuple[list[Row], dict[str, Any]]:
    """Seed the finance rows unless the same seed is there; rows for the table, and the seed's
    record (months, figures)."""
    from django.db import connection, transaction
    from django.utils import timezone
    from django.utils.translation import gettext as _

    from weiying.core import audit
    from weiying.finance import ledger
    from weiying.finance.models import Movement, Obligation, Period

    found = _seeded(n)
    if found is not None:
        return [], found
    if Obligation.objects.exists() or Movement.objects.exists():
        raise SystemExit("finance rows are there but not the bench's seed of "
                         f"{n:,} obligations; seed into a database without finance rows")
    months = _months(data_date)
    today = _last(months[-1]) + dt.timedelta(days=1)
    print(f"seeding {n:,} obligations over {months[0]}…{months[-1]}", file=sys.stderr)
    started = time.perf_counter()
    with transaction.atomic():
        receipt_vouchers = [ledger.new_voucher(
            on=_last(ym), summary=f"bench seed: receipts and acceptances {ym[0]}-{ym[1]:02d}",
            source="bench", source_key=f"bench:{ym[0]}-{ym[1]:02d}") for ym in months]
        close_vouchers = [ledger.new_voucher(
            on=_last(ym), summary=_("Service revenue for %(period)s")
            % {"period": f"{ym[0]}-{ym[1]:02d}"},
            source="close", source_key=f"close:{ym[0]}-{ym[1]:02d}") for ym in months[:-1]]
        year = _Year(months, [v.pk for v in receipt_vouchers], [v.pk for v in close_vouchers])
        made = written = 0
        source = _obligation_rows(n, months, seed_value, _contracts(), _products())
        while True:
            batch = []
            for row in source:
                batch.append(row)
                if len(batch) >= chunk:
                    break
            if not batch:
                break
            obs, mvs = [], []
            for offset, row in enumerate(batch):
                ob = Obligation(pk=made + offset + 1, **dict(zip(_OB_COLUMNS, row, strict=True)))
                mvs += year.live(ob, check=(ob.pk % 97 == 0))
                obs.append((ob.pk, *(getattr(ob, c) for c in _OB_COLUMNS)))
            made += _copy("finance_obligation", ("id", *_OB_COLUMNS), obs)
            written += _copy("finance_movement", _MV_COLUMNS, mvs)
            print(f"  {made:,} obligations, {written:,} movements, "
                  f"{time.perf_counter() - started:.0f}s", file=sys.stderr)
        if connection.vendor == "postgresql":
            _execute("SELECT setval(pg_get_serial_sequence('finance_obligation', 'id'), %s)",
                     [made])
        for voucher, totals in zip(receipt_vouchers, year.receipt_totals, strict=True):
            ledger.entries_from_totals(voucher, totals)
        for voucher, totals in zip(close_vouchers, year.close_totals, strict=True):
            ledger.entries_from_totals(voucher, totals)
        for ym in months[:-1]:
            Period.objects.filter(year=ym[0], month=ym[1]).update(
                status="closed", closed_at=timezone.now())
        seconds = time.perf_counter() - started
        curve = [{"month": f"{ym[0]}-{ym[1]:02d}", "service_months": c}
                 for ym, c in zip(months, year.closed, strict=False)]
        record = {"obligations": made, "months": [f"{y}-{m:02d}" for y, m in months],
                  "today": today.isoformat(), "seconds": round(seconds, 1), "curve": curve,
                  "movements": written, "checked_against_close": year.checked}
        audit.record(None, SEED_ACTION, object_type="bench", object_id="finance",
                     after=record)
    if connection.vendor == "postgresql":
        _execute("VACUUM ANALYZE finance_obligation")
        _execute("VACUUM ANALYZE finance_movement")
    else:
        _execute("ANALYZE")
    return [Row(f"seed {n:,} obligations and a year of movements", orm=f"{seconds:.0f} s",
                note=f"{written:,} movements (11 service months, receipts, acceptances); "
                     f"{year.checked:,} service months checked against "
                     "close._service_piece")], record


def _curve(curve: list[dict[str, Any]]) -> str:
    return ", ".join(f"{c['month']}: {c['service_months']:,}" for c in curve)


def check(record: dict[str, Any]) -> Row:
    """Every movement balances, and every obligation's running totals are its movements'."""
    started = time.perf_counter()
    unbalanced = _sql("""SELECT COUNT(*) FROM finance_movement WHERE bank + receivable <>
                         contract_liability + pending_vat + refund_payable + revenue
                         + output_vat""")[0][0]
    drift = _sql("""
        SELECT COUNT(*) FROM finance_obligation o LEFT JOIN (
            SELECT obligation_id, SUM(revenue + output_vat) AS rg, SUM(output_vat) AS rv,
                   SUM(cost) AS c,
                   SUM(bank) AS paid
            FROM finance_movement GROUP BY obligation_id) m ON m.obligation_id = o.id
        WHERE o.recognised_gross <> COALESCE(m.rg, 0) OR o.recognised_vat <> COALESCE(m.rv, 0)
           OR o.cost_booked <> COALESCE(m.c, 0) OR o.paid_gross <> COALESCE(m.paid, 0)""")[0][0]
    negative = _sql("""SELECT COUNT(*) FROM (SELECT obligation_id FROM finance_movement
                       GROUP BY obligation_id HAVING SUM(contract_liability) < 0
                       OR SUM(receivable) < 0 OR SUM(pending_vat) < 0) x""")[0][0]
    seconds = time.perf_counter() - started
    if unbalanced or drift or negative:
        raise AssertionError(f"seed inconsistent: {unbalanced} movements do not balance, "
                             f"{drift} obligations differ from their movements, {negative} "
                             "have a negative balance")
    return Row("seed check", orm=f"{seconds:.1f} s",
               note=f"{record['movements']:,} movements all balance; every obligation's "
                    "recognised, VAT, cost and paid totals equal its movements'; no negative "
                    "balance")


# --- Bench A: the close ------------------------------------------------------------------------
def _rollup() -> Row:
    """The monthly roll-up the reports read; the seed writes movements by COPY, so build it
    from them once (the finance layer keeps it up to date from then on)."""
    from weiying.finance import rollup
    from weiying.finance.models import MovementMonth

    if MovementMonth.objects.exists():
        return Row("monthly roll-up (reused)", note=f"{MovementMonth.objects.count():,} rows")
    started = time.perf_counter()
    count = rollup.rebuild()
    return Row("monthly roll-up built from the movements", orm=f"{time.perf_counter() - started:.1f} s",
               note=f"{count:,} rows (month × department × owner × product × channel)")


def _close_once(ym: tuple[int, int], today: dt.date, keep: int | None,
                memory: bool) -> tuple[float, int, int]:
    """Close `ym` in a transaction rolled back afterwards; with `keep`, only the first `keep`
    open service obligations stay open (the others are set aside first, untimed).
    Returns (seconds, obligations booked, peak traced bytes or 0)."""
    from django.db import transaction

    from weiying.finance import close

    peak = 0
    with transaction.atomic():
        if keep is not None:
            _execute("""UPDATE finance_obligation SET status = 'bench_hold'
                        WHERE fulfilment = 'service' AND status = 'open' AND id > (
                          SELECT id FROM finance_obligation
                          WHERE fulfilment = 'service' AND status = 'open'
                          ORDER BY id OFFSET %s LIMIT 1)""", [keep - 1])
        gc.collect()
        if memory:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            result = close.close_period(actor=None, year=ym[0], month=ym[1], today=today)
            seconds = time.perf_counter() - started
            if memory:
                peak = tracemalloc.get_traced_memory()[1]
        finally:
            if memory:
                tracemalloc.stop()
        transaction.set_rollback(True)
    return seconds, result.obligations, peak


def bench_close(record: dict[str, Any], sizes: list[int | None],
                memory_sizes: list[int | None]) -> list[Row]:
    """Time the close for each size; a second, traced run (tracemalloc slows Python about
    2–3×) gives the peak Python memory for the sizes in `memory_sizes`. The untraced run
    also reports how much it raised the process's peak resident size."""
    import resource

    from django.db import connection

    ym = tuple(int(x) for x in record["months"][-1].split("-"))
    today = dt.date.fromisoformat(record["today"])
    if connection.vendor == "postgresql":
        _execute("VACUUM ANALYZE finance_obligation")
    rows = []
    for keep in sizes:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds, booked, _peak = _close_once(ym, today, keep, memory=False)
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        note = f"process peak RSS +{rss:.0f} MiB"
        if keep in memory_sizes:
            m_seconds, m_booked, peak = _close_once(ym, today, keep, memory=True)
            assert booked == m_booked, (booked, m_booked)
            note = (f"peak Python memory {peak / 2**20:.1f} MiB (tracemalloc run: "
                    f"{m_seconds:.1f} s); " + note)
        goal = "goal ≤ 60 s: " + ("met" if seconds <= 60 else "MISSED")
        rows.append(Row(
            f"monthly close {record['months'][-1]} (`close_period`), {booked:,} service "
            "obligations booked", orm=f"{seconds:.1f} s",
            ratio=f"{booked / seconds:,.0f} obligations/s",
            note=f"{note}; rolled back; {goal}"))
        print(f"  close {booked:,}: {seconds:.1f}s; {note}", file=sys.stderr)
    for keep in memory_sizes:
        if keep in sizes:
            continue
        m_seconds, booked, peak = _close_once(ym, today, keep, memory=True)
        rows.append(Row(f"monthly close, {booked:,} obligations, memory only",
                        note=f"peak Python memory {peak / 2**20:.1f} MiB (tracemalloc run: "
                             f"{m_seconds:.1f} s); rolled back"))
        print(f"  close {booked:,} traced: peak {peak / 2**20:.1f} MiB", file=sys.stderr)
    return rows


# --- Bench B: the bridge -----------------------------------------------------------------------
def _director(dept: Any) -> tuple[Any, str]:
    """A login whose own scope is the subtree of `dept`, else a finance login (all) with
    the slice doing the cut."""
    from weiying.org.models import Employee

    candidates = [dept.manager] if getattr(dept, "manager_id", None) else []
    candidates += list(Employee.objects.filter(department=dept, role__data_scope="subtree")
                       .select_related("role").order_by("pk")[:5])
    for emp in candidates:
        if emp is not None and emp.role and emp.role.data_scope == "subtree" and \
                "finance.view" in (emp.role.permissions or []):
            return run._login_for(emp), f"{emp.position or emp.role.code} {emp.name} (subtree)"
    emp = Employee.objects.filter(role__code="finance", status="active").order_by("pk").first()
    return run._login_for(emp), f"finance {emp.name} (all) with the slice"


BRIDGE_SQL = """
SELECT COALESCE(SUM(m.bank) FILTER (WHERE m."on" >= %(start)s AND m."on" <= %(end)s), 0),
       COALESCE(SUM(m.revenue) FILTER (WHERE m."on" >= %(start)s AND m."on" <= %(end)s), 0),
       COALESCE(SUM(m.output_vat) FILTER (WHERE m."on" >= %(start)s AND m."on" <= %(end)s), 0),
       COALESCE(SUM(m.receivable) FILTER (WHERE m."on" < %(start)s), 0),
       COALESCE(SUM(m.receivable) FILTER (WHERE m."on" <= %(end)s), 0),
       COALESCE(SUM(m.contract_liability + m.pending_vat) FILTER (WHERE m."on" < %(start)s), 0),
       COALESCE(SUM(m.contract_liability + m.pending_vat) FILTER (WHERE m."on" <= %(end)s), 0),
       COALESCE(SUM(m.refund_payable) FILTER (WHERE m."on" < %(start)s), 0),
       COALESCE(SUM(m.refund_payable) FILTER (WHERE m."on" <= %(end)s), 0)
FROM finance_movement m JOIN org_department d ON d.id = m.department_id
WHERE d.path >= %(low)s AND d.path < %(high)s
"""

CASH_SQL = """
SELECT (SELECT COALESCE(SUM(r.amount), 0) FROM pipeline_receipt r
          JOIN pipeline_contract c ON c.id = r.contract_id
          JOIN org_department d ON d.id = c.department_id
        WHERE d.path >= %(low)s AND d.path < %(high)s
          AND r.received_on >= %(start)s AND r.received_on <= %(end)s)
     - (SELECT COALESCE(SUM(f.amount), 0) FROM finance_refund f
          JOIN pipeline_contract c ON c.id = f.contract_id
          JOIN org_department d ON d.id = c.department_id
        WHERE d.path >= %(low)s AND d.path < %(high)s
          AND f.refunded_on >= %(start)s AND f.refunded_on <= %(end)s)
"""

# The same figures from the monthly roll-up (whole fen), for a range of whole months: what the
# report reads, written by hand.
ROLLUP_SQL = """
SELECT COALESCE(SUM(m.bank) FILTER (WHERE m.period >= %(p0)s AND m.period <= %(p1)s), 0) / 100.0,
       COALESCE(SUM(m.revenue) FILTER (WHERE m.period >= %(p0)s AND m.period <= %(p1)s), 0) / 100.0,
       COALESCE(SUM(m.output_vat) FILTER (WHERE m.period >= %(p0)s AND m.period <= %(p1)s), 0)
         / 100.0,
       COALESCE(SUM(m.receivable) FILTER (WHERE m.period < %(p0)s), 0) / 100.0,
       COALESCE(SUM(m.receivable) FILTER (WHERE m.period <= %(p1)s), 0) / 100.0,
       COALESCE(SUM(m.contract_liability + m.pending_vat) FILTER (WHERE m.period < %(p0)s), 0)
         / 100.0,
       COALESCE(SUM(m.contract_liability + m.pending_vat) FILTER (WHERE m.period <= %(p1)s), 0)
         / 100.0,
       COALESCE(SUM(m.refund_payable) FILTER (WHERE m.period < %(p0)s), 0) / 100.0,
       COALESCE(SUM(m.refund_payable) FILTER (WHERE m.period <= %(p1)s), 0) / 100.0
FROM finance_movementmonth m JOIN org_department d ON d.id = m.department_id
WHERE d.path >= %(low)s AND d.path < %(high)s
"""

_FIELDS = ("cash", "revenue", "output_vat", "receivable_open", "receivable_close",
           "liability_open", "liability_close", "refund_open", "refund_close")


def _figures(b: Any) -> tuple[Decimal, ...]:
    return (*(getattr(b, f) for f in _FIELDS), b.sales_cash)


def bench_bridge(record: dict[str, Any], runs: int) -> tuple[list[Row], str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from weiying.core import tree
    from weiying.finance.reports import Slice, bridge

    dept, people, total = run._subtree_department()
    user, who = _director(dept)
    start = dt.date.fromisoformat(record["months"][0] + "-01")
    end = _last(tuple(int(x) for x in record["months"][-1].split("-")))  # type: ignore[arg-type]
    params = {"start": start, "end": end, "low": dept.path, "high": tree.upper_bound(dept.path),
              "p0": start.year * 100 + start.month, "p1": end.year * 100 + end.month}
    next_user = run._users(user.pk, 2 * runs + 10)
    where = Slice(department=dept)

    def ours() -> tuple[Decimal, ...]:
        return _figures(bridge(next_user(), start, end, where))

    def hand() -> tuple[Decimal, ...]:
        run._hand_scope(user.pk)  # the caller's employee, department and role, as ours reads
        return (*_sql(BRIDGE_SQL, params)[0], _sql(CASH_SQL, params)[0][0])  # type: ignore[arg-type]

    def hand_movements() -> tuple[Any, ...]:
        return _sql(BRIDGE_SQL, params)[0]

    def hand_rollup() -> tuple[Any, ...]:
        run._hand_scope(user.pk)
        return (*_sql(ROLLUP_SQL, params)[0], _sql(CASH_SQL, params)[0][0])  # type: ignore[arg-type]

    a, b, c = ours(), hand(), hand_rollup()
    if tuple(Decimal(x) for x in a) != tuple(Decimal(x) for x in b):
        raise AssertionError(f"bridge: ours {a} != hand SQL {b}; the comparison is void")
    if tuple(Decimal(x) for x in a) != tuple(Decimal(x).quantize(Decimal("0.01")) for x in c):
        raise AssertionError(f"bridge: ours {a} != roll-up SQL {c}; the comparison is void")
    in_slice = _sql("""SELECT COUNT(*) FROM finance_movement m JOIN org_department d
                       ON d.id = m.department_id WHERE d.path >= %(low)s AND d.path < %(high)s""",
                    params)[0][0]
    with CaptureQueriesContext(connection) as ctx:
        ours()
    ours_ms, hand_ms = run._timings(ours, runs), run._timings(hand, runs)
    roll_ms = run._timings(hand_rollup, runs)
    mv_ms = run._timings(hand_movements, runs)
    p95, h95, r95 = run._p(ours_ms, .95), run._p(hand_ms, .95), run._p(roll_ms, .95)
    goal = f"goal p95 ≤ 500 ms: {'met' if p95 <= 500 else 'MISSED'}; ratio goal ≤ 1.5×: " + (
        "met" if p95 / r95 <= 1.5 else "MISSED")
    rows = [
        Row(f"bridge {start}…{end}, subtree of {dept.name} ({people:,} of {total:,} people, "
            f"{in_slice:,} movements), as {who}", orm=run._ms(ours_ms), sql=run._ms(roll_ms),
            ratio=f"{p95 / r95:.2f}× (p95)", queries=str(len(ctx.captured_queries)),
            note=f"{runs} runs; hand SQL over the same monthly roll-up; same figures (cash "
                 f"{a[0]:,}, revenue {a[1]:,}); {goal}"),
        Row("  the same figures by hand SQL over every movement (no roll-up)",
            sql=run._ms(hand_ms), ratio=f"ours is {h95 / p95:.1f}× faster (p95)",
            note="one SELECT … FILTER over the subledger, plus the sales-side receipts"),
        Row("  of which the movement aggregate alone (hand SQL, one SELECT … FILTER)",
            sql=run._ms(mv_ms), note="the join on the department path range"),
    ]
    plans = []
    if connection.vendor == "postgresql":
        for q in ctx.captured_queries:
            if "finance_movement" in q["sql"] or "pipeline_receipt" in q["sql"]:
                plan = _sql("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
                plans.append(q["sql"] + "\n\n" + "\n".join(r[0] for r in plan))
        plan = _sql("EXPLAIN (ANALYZE, BUFFERS) " + BRIDGE_SQL, params)  # type: ignore[arg-type]
        plans.append("-- hand SQL\n" + BRIDGE_SQL + "\n" + "\n".join(r[0] for r in plan))
    return rows, "\n\n".join(plans)


# --- Report -------------------------------------------------------------------------------------
def _table(rows: list[Row], args: argparse.Namespace, tag: str, data_date: str,
           record: dict[str, Any]) -> str:
    from django.db import connection

    head = [
        f"# Finance benchmarks {run._today():%Y-%m-%d} · {args.db} · {tag}",
        "",
        f"- data: '{args.size}' company (seed {args.seed}, scale {args.scale}) generated for "
        f"{data_date}; {record['obligations']:,} obligations, {record['movements']:,} "
        f"movements seeded over {record['months'][0]}…{record['months'][-1]}; database "
        f"{connection.vendor} {run._version()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end",
        "- ours = the finance layer's code; hand SQL = hand-written SQL doing the same work, "
        "checked to give the same figures.",
        "",
        "| what | ours | hand SQL | ratio / rate | queries | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    body = [f"| {r.what} | {r.orm} | {r.sql} | {r.ratio} | {r.queries} | {r.note} |"
            for r in rows]
    return "\n".join(head + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.finance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["small", "demo", "xl"], default="xl")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", run.DEFAULT_PG))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--obligations", type=int, default=0,
                        help="obligations to seed (default 1,000,000 for xl, else 20,000)")
    parser.add_argument("--close-sizes", default="100000,all",
                        help="open service obligations each close run keeps ('all' = every one)")
    parser.add_argument("--memory-sizes", default="100000,200000",
                        help="sizes also run under tracemalloc (slow: 'all' adds minutes)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--rebuild", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-close", action="store_true")
    parser.add_argument("--skip-bridge", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 50:
        parser.error("--runs must be at least 50 for a p95 worth reading")
    n = args.obligations or (1_000_000 if args.size == "xl" else 20_000)
    tag = _configure(args)

    import django

    django.setup()
    rows: list[Row] = []
    built, data_date = run._build(args)
    if built:
        rows.append(built)
    seed_rows, record = seed(n, dt.date.fromisoformat(data_date[:10]), args.seed)
    rows += seed_rows
    if not seed_rows:
        rows.append(Row(f"seed {n:,} obligations (reused)", orm=f"{record['seconds']:.0f} s",
                        note=f"when seeded; service months booked: "
                             f"{_curve(record['curve'])}"))
    rows.append(check(record))
    rows.append(_rollup())
    if not args.skip_close:
        def parse(text: str) -> list[int | None]:
            return [None if s == "all" else int(s) for s in text.split(",") if s]

        rows += bench_close(record, parse(args.close_sizes), parse(args.memory_sizes))
    plans = ""
    if not args.skip_bridge:
        bridge_rows, plans = bench_bridge(record, args.runs)
        rows += bridge_rows

    table = _table(rows, args, tag, data_date, record)
    print(table)
    out = HERE / "results" / f"{run._today():%Y-%m-%d}-finance-{args.db}-{tag}.md"
    out.parent.mkdir(exist_ok=True)
    extra = ("\n## Query plans (EXPLAIN ANALYZE)\n\n```\n" + plans + "\n```\n") if plans else ""
    out.write_text(table + "\n## Seed\n\n```json\n" + json.dumps(record, indent=1)
                   + "\n```\n" + extra, encoding="utf-8")
    print(f"written to {out.relative_to(HERE.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
