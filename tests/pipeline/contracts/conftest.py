"""Fixtures for contracts: a catalogue, customers owned by the personas, and a helper that
walks a contract to any state through the services."""

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
from weiying.pipeline.services import contracts as svc


def make_customer(name: str, owner: Any) -> Customer:
    return Customer.objects.create(
        name=name, name_key=name, owner=owner, department=owner.department if owner else None,
        in_pool=owner is None, last_activity_at=timezone.now(),
    )


@pytest.fixture
def catalog(db: Any) -> SimpleNamespace:
    return SimpleNamespace(
        box=Product.objects.create(code="P-BOX", name="智能柜", list_price=Decimal("33.33"),
                                   vat_rate=Decimal("0.13")),
        saas=Product.objects.create(code="P-SAAS", name="SaaS 年费",
                                    list_price=Decimal("1000.00"), vat_rate=Decimal("0.06")),
        old=Product.objects.create(code="P-OLD", name="旧型号", list_price=Decimal("10.00"),
                                   is_active=False),
    )


@pytest.fixture
def customers(company: Any) -> SimpleNamespace:
    return SimpleNamespace(
        a=make_customer("上海甲公司", company.rep_a),
        a2=make_customer("上海乙公司", company.rep_a2),
        b=make_customer("北京丙公司", company.rep_b),
    )


@pytest.fixture
def make_contract(company: Any, catalog: Any, customers: Any) -> Any:
    """make_contract(status="signed", lines=[...], customer=…) → a contract in that state."""

    def _make(status: str = "draft", *, customer: Any = None, lines: Any = None,
              title: str = "测试合同", signed_on: dt.date | None = None) -> Any:
        rep = user_of(company.rep_a)
        manager = user_of(company.manager_a)
        customer = customer or customers.a
        lines = lines if lines is not None else [
            {"product": catalog.saas, "quantity": "2", "unit_price": "1000.00"},
        ]
        rep_user = rep if customer.owner_id == company.rep_a.pk else user_of(customer.owner)
        contract = svc.create_contract(actor=rep_user, customer=customer, title=title,
                                       lines=lines)
        if status == "draft":
            return contract
        contract = svc.submit_contract(actor=rep_user, contract=contract)
        if status == "pending_approval":
            assert contract.status == status, "give a line with a discount above 10 %"
            return contract
        if contract.status == "pending_approval":
            approver = manager if customer.owner.department_id == company.team_a.pk else \
                user_of(company.manager_b)
            contract = svc.approve_contract(actor=approver, contract=contract)
        if status == "approved":
            return contract
        day = signed_on or timezone.localdate() - dt.timedelta(days=30)
        contract = svc.sign_contract(actor=user_of(company.finance), contract=contract,
                                     signed_on=day)
        if status == "signed":
            return contract
        ops = user_of(company.operations)
        contract = svc.record_delivery(actor=ops, contract=contract, delivered_on=day)
        if status == "in_delivery":
            return contract
        contract = svc.record_acceptance(actor=ops, contract=contract, accepted_on=day)
        if status == "accepted":
            return contract
        contract = svc.complete_contract(actor=ops, contract=contract, completed_on=day)
        if status == "completed":
            return contract
        if status == "cancelled":
            raise AssertionError("cancel explicitly")
        return contract

    return _make


@pytest.fixture(autouse=True)
def english() -> Any:
    """Messages are asserted in their English msgids."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def login(login):
    """These tests read English messages: every client asks for English."""
    return lambda employee, language="en": login(employee, language=language)
