"""Open the books from history: when a company turns the finance layer on over contracts it
already has (or the demo generates 18 months of them without events), replay what happened,
day by day, through the same postings the events make, closing each month as it passes.

Every posting it makes is keyed by its source, like the events', so running it again (after
an interruption, say) books only what is still missing and closes only the months still open;
it never rewrites a closed period.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from weiying.finance import close, services
from weiying.finance.models import MarketingSpend, Obligation, Period, Voucher
from weiying.pipeline.choices import ContractStatus
from weiying.pipeline.models import Contract, Receipt


@dataclass
class BackfillResult:
    contracts: int = 0
    receipts: int = 0
    acceptances: int = 0
    cancellations: int = 0
    spends: int = 0
    months_closed: int = 0


def _month_end(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def backfill(*, today: dt.date | None = None, close_months: bool = True,
             progress: Callable[[str], None] | None = None) -> BackfillResult:
    today = today or timezone.localdate()
    signed = Contract.objects.exclude(signed_on=None)
    steps: list[tuple[dt.date, int, str, Any]] = []
    for pk, signed_on in signed.values_list("pk", "signed_on"):
        steps.append((signed_on, 0, "sign", pk))
    for pk, on in Receipt.objects.filter(contract__in=signed).values_list("pk", "received_on"):
        steps.append((on, 1, "receipt", pk))
    for pk, on in signed.exclude(accepted_on=None).values_list("pk", "accepted_on"):
        steps.append((on, 2, "accept", pk))
    for pk, on in (signed.filter(status=ContractStatus.CANCELLED)
                   .values_list("pk", "updated_at")):
        steps.append((timezone.localdate(on), 3, "cancel", pk))
    booked = {key.split(":", 1)[1] for key in Voucher.objects.filter(
        source="marketing").values_list("source_key", flat=True) if key}
    for pk, on in MarketingSpend.objects.values_list("pk", "spent_on"):
        if str(pk) not in booked:
            steps.append((on, 4, "spend", pk))
    steps.sort(key=lambda s: (s[0], s[1], s[3]))
    result = BackfillResult()
    month: tuple[int, int] | None = None

    closed = set(Period.objects.filter(status="closed").values_list("year", "month"))

    def close_through(day: dt.date) -> None:
        nonlocal month
        while month is not None and _month_end(dt.date(*month, 1)) < day:
            if _month_end(dt.date(*month, 1)) < today and month not in closed:
                with transaction.atomic():
                    close.close_period(actor=None, year=month[0], month=month[1], today=today)
                result.months_closed += 1
                if progress:
                    progress(f"closed {month[0]}-{month[1]:02d}")
            month = (month[0] + 1, 1) if month[1] == 12 else (month[0], month[1] + 1)

    for day, _order, kind, pk in steps:
        if day > today:
            break
        if month is None:
            month = (day.year, day.month)
        if close_months:
            close_through(day)
        if kind == "sign":
            if not Obligation.objects.filter(contract_id=pk).exists():
                services.post_contract_signed(pk)
                result.contracts += 1
        elif kind == "receipt":
            if services.post_receipt(pk) is not None:
                result.receipts += 1
        elif kind == "accept":
            if services.post_acceptance(pk, key=f"contract:{pk}:accepted",
                                        accepted_on=day) is not None:
                result.acceptances += 1
        elif kind == "spend":
            if services.post_marketing_spend(pk) is not None:
                result.spends += 1
        elif services.post_cancellation(pk, on=day) is not None:
            result.cancellations += 1
    if close_months:
        close_through(today)
    return result
