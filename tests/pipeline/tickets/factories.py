"""Small builders for after-sale tests.

Customers come from the customers service; contracts are written with the ORM in the exact
state a test needs (signed on a given day, completed, …), with the customer's value
roll-ups set the way the contract services keep them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import count
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from django.db.models import F
from django.utils import timezone

from weiying.catalog.models import Product
from weiying.customers.models import Customer
from weiying.customers.services import create_customer
from weiying.pipeline.models import Contract, ContractLine, Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SHANGHAI)
PURCHASED = {"signed", "in_delivery", "completed"}
_numbers = count(1)


@contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Every timezone.now() — services, auto_now fields, selectors — answers `at`."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def customer(name: str, owner: Any) -> Customer:
    return create_customer(actor=None, name=name, owner=owner, allow_duplicate=True)


def product(code: str, *, category: str = "", lifecycle_days: int | None = None,
            price: str = "100.00", active: bool = True) -> Product:
    return Product.objects.create(
        code=code, name=f"产品{code}", category=category, lifecycle_days=lifecycle_days,
        list_price=Decimal(price), is_active=active,
    )


def contract(
    buyer: Customer, *, status: str = "signed", signed_on: dt.date | None = None,
    products: tuple[Product, ...] = (), total: str = "1000.00", collected: str = "0.00",
) -> Contract:
    """A contract with one line per product; the total is split over the lines."""
    total_d = Decimal(total)
    made = Contract.objects.create(
        number=f"HT-T{next(_numbers):06d}", title="测试合同", customer=buyer,
        owner=buyer.owner, department=buyer.department, status=status,
        total=total_d, collected=Decimal(collected),
        signed_on=signed_on if status in PURCHASED | {"cancelled"} else None,
        created_at=timezone.now(),
    )
    share = (total_d / len(products)).quantize(Decimal("0.01")) if products else total_d
    for item in products:
        ContractLine.objects.create(
            contract=made, product=item, quantity=Decimal(1), unit_price=share, vat_rate=0,
            amount=share, net=share, vat=0,
        )
    if status in PURCHASED:
        Customer.objects.filter(pk=buyer.pk).update(
            total_signed=F("total_signed") + total_d,
            total_collected=F("total_collected") + Decimal(collected),
            last_purchase_at=signed_on,
        )
    return made


def ticket_row(buyer: Customer, **fields: Any) -> Ticket:
    """A ticket written directly (for list and filter fixtures at chosen times)."""
    opened = fields.pop("opened_at", NOW)
    values = {
        "number": f"GD-T{next(_numbers):06d}", "title": "故障", "priority": "normal",
        "status": "open", "owner": buyer.owner, "department": buyer.department,
        "opened_at": opened, "respond_by": opened + dt.timedelta(hours=8),
        "resolve_by": opened + dt.timedelta(hours=72),
    }
    values.update(fields)
    return Ticket.objects.create(customer=buyer, **values)
