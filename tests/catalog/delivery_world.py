"""Fixtures for the delivery-order tests: a catalogue with goods, a milestone and a service,
and signed contracts owned by rep A and rep B. Import the fixtures into a test module."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import user_of
from weiying.catalog.models import Product
from weiying.customers.models import Customer
from weiying.pipeline.services import contracts as contract_svc


def make_customer(name: str, owner: Any) -> Customer:
    return Customer.objects.create(
        name=name, name_key=name, owner=owner, department=owner.department,
        last_activity_at=timezone.now(),
    )


@pytest.fixture
def goods(db: Any) -> SimpleNamespace:
    return SimpleNamespace(
        box=Product.objects.create(code="D-BOX", name="智能柜", list_price=Decimal("100.00"),
                                   fulfilment="goods"),
        setup=Product.objects.create(code="D-SET", name="上线验收", list_price=Decimal("500.00"),
                                     fulfilment="milestone", vat_rate=Decimal("0.06")),
        saas=Product.objects.create(code="D-SAAS", name="SaaS 年费",
                                    list_price=Decimal("1000.00"), fulfilment="service",
                                    vat_rate=Decimal("0.06"), service_months=12),
    )


def signed(company: Any, goods: Any, owner: Any, *, signed_on: dt.date | None = None,
           lines: Any = None, title: str = "交付测试合同") -> Any:
    """A contract of 10 boxes, 1 milestone and 1 year of SaaS owned by `owner`, signed."""
    customer = make_customer(f"{title}{owner.number}", owner)
    lines = lines if lines is not None else [
        {"product": goods.box, "quantity": "10"},
        {"product": goods.setup, "quantity": "1"},
        {"product": goods.saas, "quantity": "1"},
    ]
    contract = contract_svc.create_contract(actor=None, customer=customer, title=title,
                                            lines=lines)
    contract_svc.submit_contract(actor=None, contract=contract)
    day = signed_on or timezone.localdate() - dt.timedelta(days=30)
    contract = contract_svc.sign_contract(actor=user_of(company.finance), contract=contract,
                                          signed_on=day)
    return contract


def line_of(contract: Any, product: Any) -> Any:
    return contract.lines.get(product=product)


@pytest.fixture
def contract(company: Any, goods: Any) -> Any:
    return signed(company, goods, company.rep_a)


@pytest.fixture
def ops(company: Any) -> Any:
    return user_of(company.operations)
