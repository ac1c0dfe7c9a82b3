"""The monthly roll-up of the subledger (MovementMonth), in whole fen.

`add_voucher` adds one voucher's movements in a single INSERT … SELECT … ON CONFLICT DO
UPDATE, the same statement on PostgreSQL and SQLite; every voucher's movements share one
booking date, hence one month. `rebuild` recomputes the whole table from the movements.
"""

from __future__ import annotations

from django.db import connection

from weiying.finance.models import BALANCE_COLUMNS, Movement, MovementMonth

_DIMS = ("department_id", "owner_id", "product_id", "channel")


def _key_sql() -> str:
    parts = [f"COALESCE(CAST({d} AS TEXT), '')" for d in _DIMS[:3]]
    return "CAST(%s AS TEXT) || ':' || " + " || ':' || ".join(parts) + " || ':' || channel"


def _statement(where: str, period_sql: str, *, constant_period: bool = False) -> str:
    mm, mv = MovementMonth._meta.db_table, Movement._meta.db_table
    sums = ", ".join(f"SUM(ROUND({c} * 100))" for c in BALANCE_COLUMNS)
    cols = ", ".join(BALANCE_COLUMNS)
    updates = ", ".join(f"{c} = {mm}.{c} + excluded.{c}" for c in BALANCE_COLUMNS)
    key = _key_sql().replace("%s", period_sql)
    return (f"INSERT INTO {mm} (key, period, department_id, owner_id, product_id, channel, "
            f"{cols}) SELECT {key}, {period_sql}, department_id, owner_id, product_id, channel, "
            f"{sums} FROM {mv} WHERE {where} GROUP BY "
            # A constant in GROUP BY would read as a column position on SQLite.
            f"{'' if constant_period else period_sql + ', '}"
            f"department_id, owner_id, product_id, channel "
            f"ON CONFLICT (key) DO UPDATE SET {updates}")


def add_voucher(voucher_id: int, year: int, month: int) -> None:
    """Add the movements of one voucher (booked in year-month) to the roll-up."""
    period = year * 100 + month
    sql = _statement("voucher_id = %s", str(int(period)), constant_period=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, [voucher_id])


def _period_sql() -> str:
    if connection.vendor == "postgresql":
        return 'CAST(EXTRACT(YEAR FROM "on") * 100 + EXTRACT(MONTH FROM "on") AS INTEGER)'
    return "CAST(strftime('%Y%m', \"on\") AS INTEGER)"


def rebuild() -> int:
    """Recompute the roll-up from every movement; returns the rows written."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {MovementMonth._meta.db_table}")
        # No parameters, so the '%' in SQLite's strftime is left alone.
        cursor.execute(_statement("1 = 1", _period_sql()))
    return MovementMonth.objects.count()
