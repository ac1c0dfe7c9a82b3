"""`manage.py rebuild_funnel`: recompute the funnel's roll-up from the pipeline's tables (after
a bulk load such as the demo generator, which writes its history without events)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Recompute the funnel roll-up (reports) from the opportunities and stage changes."

    def handle(self, *args: Any, **options: Any) -> None:
        from weiying.reports.rollup import rebuild

        started = time.monotonic()
        counts = rebuild()
        self.stdout.write(f"{counts} in {time.monotonic() - started:.1f} s")
