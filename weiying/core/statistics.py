"""The query planner's statistics. SQLite keeps none until ANALYZE is run, and without them it
guesses: a correlated check on a customer's contracts was driven from every line of the
product instead (seconds on the demo company, milliseconds with statistics). PostgreSQL's
autovacuum keeps its own, but a bulk load outruns it."""

from __future__ import annotations

from django.db import connection


def refresh(*, full: bool = False) -> None:
    """Bring the planner's statistics up to date: `full` analyses every table (after a bulk
    load); otherwise SQLite's `PRAGMA optimize` analyses the tables that changed enough."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite" and not full:
            cursor.execute("PRAGMA optimize")
        else:
            cursor.execute("ANALYZE")
