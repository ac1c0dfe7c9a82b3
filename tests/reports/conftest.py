"""Builders for the report tests: opportunities, leads and follow-ups made through the
pipeline services at fixed moments (every timezone.now() answers the moment given)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import count
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from weiying.customers.services import create_customer
from weiying.pipeline.models import Opportunity, Pipeline, Stage
from weiying.pipeline.services import leads as lead_services
from weiying.pipeline.services import opportunities as opp_services

SHANGHAI = ZoneInfo("Asia/Shanghai")
_numbers = count(1)


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@contextmanager
def frozen(moment: dt.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def stages() -> dict[str, Stage]:
    """The default pipeline's stages: s1…s4 open, won, lost."""
    pipeline = Pipeline.objects.get(is_default=True)
    out = {}
    for stage in pipeline.stages.order_by("order"):
        out[stage.kind if stage.kind != "open" else f"s{stage.order}"] = stage
    return out


def customer(owner: Any, name: str = "") -> Any:
    n = next(_numbers)
    return create_customer(actor=None, name=name or f"客户{n}", owner=owner,
                           allow_duplicate=True)


def lead(owner: Any, source: str, moment: dt.datetime) -> Any:
    n = next(_numbers)
    with frozen(moment):
        return lead_services.capture_lead(actor=None, name=f"线索{n}",
                                          phone=f"139{n:08d}", source=source, owner=owner)


def opportunity(owner: Any, amount: str, created: dt.datetime, *moves: tuple[str, Any],
                source: str = "", expected_close: dt.date | None = None) -> Opportunity:
    """An opportunity created at `created`, then moved: ("s3", when), ("won", when),
    ("lost", when, reason)."""
    the_lead = lead(owner, source, created) if source else None
    with frozen(created):
        opp = opp_services.create_opportunity(
            actor=None, customer=customer(owner), name=f"商机{next(_numbers)}",
            amount=Decimal(amount), owner=owner, lead=the_lead,
            expected_close=expected_close)
    named = stages()
    for move in moves:
        target, when = move[0], move[1]
        with frozen(when):
            if target == "won":
                opp_services.mark_won(actor=None, opportunity=opp)
            elif target == "lost":
                opp_services.mark_lost(actor=None, opportunity=opp, reason=move[2])
            else:
                opp_services.move_stage(actor=None, opportunity=opp, stage=named[target])
        opp.refresh_from_db()
    return opp


def signed_contract(company: Any, owner: Any, customer: Any, signed_on: dt.date, *,
                    lines: list[dict[str, Any]], title: str) -> Any:
    """A contract made by its owner, approved by their manager when it needs approval, and
    signed by finance on `signed_on`."""
    from tests.conftest import user_of
    from weiying.pipeline.services import contracts

    contract = contracts.create_contract(actor=user_of(owner), customer=customer, title=title,
                                         lines=lines)
    contract = contracts.submit_contract(actor=user_of(owner), contract=contract)
    if contract.status == "pending_approval":
        manager = (company.manager_a if owner.department_id == company.team_a.pk
                   else company.manager_b)
        contract = contracts.approve_contract(actor=user_of(manager), contract=contract)
    return contracts.sign_contract(actor=user_of(company.finance), contract=contract,
                                   signed_on=signed_on)
