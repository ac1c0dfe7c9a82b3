"""The monthly close (月结): book the month's service revenue, then lock the period.

The close reads open service obligations in chunks of primary keys, so its memory does not
grow with their number; it writes the month's movements in bulk (PostgreSQL COPY), moves the
obligations' running totals with one UPDATE per chunk, and books one voucher for the month
whose entries are summed per account and department.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.catalog.models import Fulfilment
from weiying.core import audit
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.events import emit
from weiying.core.money import ZERO, money
from weiying.core.permissions import employee_of, require
from weiying.finance import ledger, rollup
from weiying.finance.models import (
    BALANCE_COLUMNS,
    Movement,
    Obligation,
    ObligationStatus,
    Period,
    PeriodStatus,
)
from weiying.finance.recognition import recognition_amounts, service_due_through

CHUNK = 5000

_READ = ("pk", "contract_id", "gross", "vat", "cost", "start_on", "end_on",
         "recognised_gross", "recognised_vat", "paid_gross", "cost_booked", "department_id",
         "owner_id", "customer_id", "product_id", "channel")


@dataclass
class CloseResult:
    period: Period
    obligations: int
    revenue: Decimal
    output_vat: Decimal
    voucher_number: str | None


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _due_through(row: dict[str, Any], year: int, month: int) -> Decimal:
    """What should stand recognised once (year, month) closes. Months close in order and each
    close books every open service, so an obligation already recognised in part (or starting
    this month) needs only this month's part: gross × its days here ÷ all its days, rounded,
    or the remainder in its last month. Any other (a contract signed with a start in a month
    already closed) takes the sum of the parts so far."""
    gross, start, end, r0 = row["gross"], row["start_on"], row["end_on"], row["recognised_gross"]
    ym = (year, month)
    if ym >= (end.year, end.month):
        return gross
    if ym == (start.year, start.month) or r0 > 0:
        first = start if ym == (start.year, start.month) else dt.date(year, month, 1)
        days = (_month_end(year, month) - first).days + 1
        return r0 + money(gross * days / ((end - start).days + 1))
    return service_due_through(gross, start, end, year, month)


def _service_piece(row: dict[str, Any], year: int, month: int) -> dict[str, Decimal] | None:
    gross, vat, cost = row["gross"], row["vat"], row["cost"]
    r0, paid = row["recognised_gross"], row["paid_gross"]
    r1 = _due_through(row, year, month)
    if r1 <= r0:
        return None
    return recognition_amounts(gross=gross, vat=vat, cost=cost, r0=r0,
                               vat0=row["recognised_vat"], cost0=row["cost_booked"], paid=paid,
                               r1=r1)


_COLUMNS = ("obligation_id", "contract_id", "voucher_id", "kind", "on", "event_on",
            *BALANCE_COLUMNS, "department_id", "owner_id", "customer_id", "product_id",
            "channel")


def _insert(rows: list[tuple]) -> None:
    if not rows:
        return
    table = Movement._meta.db_table
    if connection.vendor == "postgresql":
        cols = ", ".join(f'"{c}"' for c in _COLUMNS)
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    Movement.objects.bulk_create(
        [Movement(**dict(zip(_COLUMNS, row, strict=True))) for row in rows], batch_size=2000)


def _apply(voucher_id: int, lo: int, hi: int) -> None:
    """Move the obligations' running totals by this close's movements, in one statement."""
    ob, mv = Obligation._meta.db_table, Movement._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {ob} SET
                   recognised_gross = {ob}.recognised_gross + m.revenue + m.output_vat,
                   recognised_vat = {ob}.recognised_vat + m.output_vat,
                   cost_booked = {ob}.cost_booked + m.cost
                FROM {mv} m
                WHERE m.voucher_id = %s AND m.obligation_id BETWEEN %s AND %s
                  AND m.obligation_id = {ob}.id AND {ob}.id BETWEEN %s AND %s""",
            [voucher_id, lo, hi, lo, hi],
        )
        cursor.execute(
            f"""UPDATE {ob} SET status = %s
                WHERE id BETWEEN %s AND %s AND fulfilment = %s AND status = %s
                  AND recognised_gross + released_gross >= gross""",
            [ObligationStatus.SATISFIED, lo, hi, Fulfilment.SERVICE, ObligationStatus.OPEN],
        )


def _lock_obligations() -> None:
    """Postings wait while the month closes (reads go on), so no receipt moves an obligation
    between the close's read and its write."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Obligation._meta.db_table} IN EXCLUSIVE MODE")


@transaction.atomic
def close_period(*, actor: Any, year: int, month: int,
                 today: dt.date | None = None) -> CloseResult:
    """Close (year, month): book its service revenue and lock it. Refused while an earlier
    period is open, before the month has ended, or when it is closed already."""
    if actor is not None:
        require(actor, "finance.close")
    if not (1 <= int(month) <= 12) or not (2000 <= int(year) <= 2100):
        raise ValidationFailed(_("Give a month as year and month, e.g. 2026 and 3."),
                               code="invalid_period", field="month")
    year, month = int(year), int(month)
    today = today or timezone.localdate()
    end = _month_end(year, month)
    if end >= today:
        raise ValidationFailed(
            _("%(period)s has not ended yet; close it from %(day)s on.")
            % {"period": f"{year}-{month:02d}", "day": (end + dt.timedelta(days=1)).isoformat()},
            code="period_not_ended", field="month")
    Period.objects.get_or_create(year=year, month=month)
    period = Period.objects.select_for_update().get(year=year, month=month)
    if period.is_closed:
        raise Conflict(_("%(period)s is already closed; a closed period never changes. Book a "
                         "correction in an open period.") % {"period": str(period)},
                       code="period_closed")
    through = ledger.closed_through()
    if through is not None and (year, month) != ledger.next_month(*through):
        if (year, month) < through:
            raise Conflict(_("The books are closed through %(through)s, so %(period)s is closed "
                             "already; book a correction in an open period.")
                           % {"through": f"{through[0]}-{through[1]:02d}", "period": str(period)},
                           code="period_closed")
        nxt = ledger.next_month(*through)
        first = f"{nxt[0]}-{nxt[1]:02d}"
        raise Conflict(_("%(earlier)s is still open; close the months in order, %(earlier)s "
                         "first.") % {"earlier": first}, code="earlier_period_open")
    first_open = (Period.objects.filter(status=PeriodStatus.OPEN)
                  .filter(Q(year__lt=year) | Q(year=year, month__lt=month))
                  .order_by("year", "month").first())
    if through is None and first_open is not None:
        raise Conflict(_("%(earlier)s is still open; close the months in order, %(earlier)s "
                         "first.") % {"earlier": str(first_open)}, code="earlier_period_open")
    _lock_obligations()
    employee = employee_of(actor) if actor is not None else None
    voucher = ledger.new_voucher(
        on=end, summary=_("Service revenue for %(period)s") % {"period": str(period)},
        source="close", source_key=f"close:{year}-{month:02d}", actor_employee=employee)
    totals: dict[tuple[str, Any], Decimal] = defaultdict(lambda: ZERO)
    count = 0
    base = Obligation.objects.filter(fulfilment=Fulfilment.SERVICE, status=ObligationStatus.OPEN,
                                     start_on__lte=end)
    # Walk the primary key in ranges: each read is one range of the primary key index, not a
    # sort of every open service per chunk.
    bounds = base.aggregate(lo=Min("pk"), hi=Max("pk"))
    last = (bounds["lo"] or 1) - 1
    top = bounds["hi"] or 0
    while last < top:
        chunk = list(base.filter(pk__gt=last, pk__lte=last + CHUNK).order_by("pk")
                     .values(*_READ))
        if not chunk:
            last += CHUNK
            continue
        rows = []
        for row in chunk:
            piece = _service_piece(row, year, month)
            if piece is None:
                continue
            dept = row["department_id"]
            for column, amount in piece.items():
                totals[(column, dept)] += amount
            totals[("cost_credit:fulfilment_cost", dept)] += piece["cost"]
            rows.append((row["pk"], row["contract_id"], voucher.pk, "service_month", end, end,
                         *(piece.get(c, ZERO) for c in BALANCE_COLUMNS),
                         dept, row["owner_id"], row["customer_id"], row["product_id"],
                         row["channel"]))
        _insert(rows)
        _apply(voucher.pk, last + 1, last + CHUNK)
        count += len(rows)
        last += CHUNK
    revenue = sum((v for (c, _d), v in totals.items() if c == "revenue"), ZERO)
    output_vat = sum((v for (c, _d), v in totals.items() if c == "output_vat"), ZERO)
    if count:
        rollup.add_voucher(voucher.pk, year, month)
        ledger.entries_from_totals(voucher, totals)
    else:
        # Nothing was due: give the voucher number back, so the period's numbers have no gap.
        voucher.delete()
        voucher = None
        Period.objects.filter(pk=period.pk).update(next_voucher=F("next_voucher") - 1)
    period.status = PeriodStatus.CLOSED
    period.closed_at = timezone.now()
    period.closed_by = employee
    period.save(update_fields=["status", "closed_at", "closed_by"])
    audit.record(actor, "period.close", period, after={
        "period": str(period), "obligations": count, "revenue": revenue,
        "output_vat": output_vat, "voucher": voucher.number if voucher else None})
    emit("period.closed", period, actor=actor, year=year, month=month, obligations=count,
         revenue=revenue, output_vat=output_vat)
    return CloseResult(period, count, revenue, output_vat, voucher.number if voucher else None)


