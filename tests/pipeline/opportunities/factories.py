"""Small factories for opportunity and follow-up tests (rows made directly, no services of
other areas, so these tests do not depend on them)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from weiying.catalog.models import Product
from weiying.customers.models import Customer
from weiying.pipeline.models import Lead, Pipeline, Stage

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


class Clock:
    """A frozen `timezone.now` that tests move forward by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: Any) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: Any) -> Clock:
    c = Clock(NOW)
    monkeypatch.setattr(timezone, "now", c)
    return c


def make_customer(owner: Any, name: str = "上海星辰科技", **fields: Any) -> Customer:
    return Customer.objects.create(
        name=name, name_key=name, owner=owner,
        department=owner.department if owner is not None else None,
        last_activity_at=fields.pop("last_activity_at", timezone.now() - dt.timedelta(days=30)),
        **fields,
    )


def make_lead(owner: Any, name: str = "张先生", **fields: Any) -> Lead:
    now = timezone.now()
    defaults = {
        "company_name": "杭州云帆", "status": "assigned", "created_at": now - dt.timedelta(hours=5),
        "assigned_at": now - dt.timedelta(hours=2), "last_activity_at": now - dt.timedelta(hours=2),
        "department": owner.department if owner is not None else None,
    }
    return Lead.objects.create(name=name, owner=owner, **{**defaults, **fields})


def make_product(code: str = "P-100", price: str = "1000.00") -> Product:
    return Product.objects.create(code=code, name="产品" + code, list_price=Decimal(price))


def stages() -> dict[str, Stage]:
    """The seeded default pipeline's stages by name."""
    pipeline = Pipeline.objects.get(is_default=True)
    return {s.name: s for s in pipeline.stages.all()}
