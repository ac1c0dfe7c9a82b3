import pytest
from django.db import connection

from weiying.core import statistics
from weiying.org.models import Employee

pytestmark = pytest.mark.django_db


def _analysed_rows(table: str) -> int | None:
    """How many rows the planner's statistics say `table` has (None: never analysed)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            if cursor.fetchone() is None:
                return None
            cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s AND idx IS NOT NULL",
                           [table])
            row = cursor.fetchone()
            return int(row[0].split()[0]) if row else None
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        tuples = cursor.fetchone()[0]
        return None if tuples < 0 else int(tuples)


def test_a_full_refresh_gives_the_planner_the_row_counts(company):
    statistics.refresh(full=True)

    assert _analysed_rows("org_employee") == Employee.objects.count() > 5
