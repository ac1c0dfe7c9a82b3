"""Helpers for the customer tests: customers made by the system, pipeline rows made raw."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.utils import timezone

from weiying.customers import services
from weiying.customers.models import Customer

_seq = itertools.count(1)


def make_customer(owner: Any = None, *, name: str | None = None, phone: str = "",
                  **kwargs: Any) -> Customer:
    """A customer created by the system (no permission check), unique name by default."""
    n = next(_seq)
    return services.create_customer(
        actor=None, name=name or f"测试客户{n}号", phone=phone, owner=owner, **kwargs
    )


def pipeline_rows(customer: Customer, owner: Any) -> dict[str, Any]:
    """One of each pipeline row pointing at `customer` (written raw: no pipeline services)."""
    from weiying.pipeline import models as p

    now = timezone.now()
    n = next(_seq)
    pipe = p.Pipeline.objects.get(is_default=True)
    stage = pipe.stages.order_by("order").first()
    lead = p.Lead.objects.create(name="联系人", customer=customer, owner=owner,
                                 last_activity_at=now, created_at=now)
    opp = p.Opportunity.objects.create(name="商机", customer=customer, pipeline=pipe,
                                       stage=stage, owner=owner, stage_entered_at=now,
                                       last_activity_at=now, created_at=now)
    followup = p.FollowUp.objects.create(kind="call", customer=customer, owner=owner,
                                         note="电话沟通", at=now)
    quote = p.Quote.objects.create(number=f"Q{n}", customer=customer, owner=owner)
    contract = p.Contract.objects.create(number=f"C{n}", title="合同", customer=customer,
                                         owner=owner, created_at=now)
    ticket = p.Ticket.objects.create(number=f"T{n}", customer=customer, title="工单",
                                     owner=owner, opened_at=now, respond_by=now,
                                     resolve_by=now)
    return {"lead": lead, "opportunity": opp, "followup": followup, "quote": quote,
            "contract": contract, "ticket": ticket}


@pytest.fixture
def pool_rules(settings: Any) -> Any:
    """Set pool rules for one test: pool_rules(POOL_DAILY_CLAIM_LIMIT=2, …)."""

    def _set(**rules: int) -> None:
        settings.WEIYING = {**settings.WEIYING, **rules}

    return _set
