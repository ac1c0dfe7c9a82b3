"""Fixtures for the finance layer: products of each fulfilment, customers, and `deal`, which
signs a contract through the spine's services so the finance layer books it from the events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.pipeline.contracts.conftest import make_customer
from weiying.catalog.models import Product
from weiying.finance.models import Movement, Obligation
from weiying.pipeline.services import contracts as svc


@pytest.fixture
def products(db: Any) -> SimpleNamespace:
    return SimpleNamespace(
        box=Product.objects.create(code="F-BOX", name="智能柜", list_price=Decimal("1130.00"),
                                   vat_rate=Decimal("0.13"), fulfilment="goods",
                                   standard_cost=Decimal("600.00")),
        saas=Product.objects.create(code="F-SAAS", name="SaaS 年费",
                                    list_price=Decimal("12000.00"), vat_rate=Decimal("0.06"),
                                    fulfilment="service", service_months=12,
                                    standard_cost=Decimal("2400.00")),
        setup=Product.objects.create(code="F-SETUP", name="实施", list_price=Decimal("5000.00"),
                                     vat_rate=Decimal("0.06"), fulfilment="milestone"),
    )


@pytest.fixture
def buyer(company: Any) -> Any:
    return make_customer("上海甲公司", company.rep_a)


@pytest.fixture
def deal(company: Any, buyer: Any) -> Any:
    """deal(lines, signed_on=…, start_on=…, end_on=…) → a signed contract."""

    def _deal(lines: list[dict[str, Any]], *, signed_on: dt.date,
              start_on: dt.date | None = None, end_on: dt.date | None = None,
              customer: Any = None) -> Any:
        contract = svc.create_contract(actor=user_of(company.rep_a), customer=customer or buyer,
                                       title="财务测试", lines=lines, start_on=start_on,
                                       end_on=end_on)
        contract = svc.submit_contract(actor=user_of(company.rep_a), contract=contract)
        if contract.status == "pending_approval":
            contract = svc.approve_contract(actor=user_of(company.manager_a), contract=contract)
        return svc.sign_contract(actor=user_of(company.finance), contract=contract,
                                 signed_on=signed_on)

    return _deal


def balances(contract: Any) -> dict[str, Decimal]:
    """The subledger's balances for one contract, summed over its movements."""
    out = {c: Decimal("0.00") for c in ("bank", "receivable", "contract_liability",
                                         "pending_vat", "refund_payable", "revenue",
                                         "output_vat", "cost")}
    for m in Movement.objects.filter(contract=contract):
        for c in out:
            out[c] += getattr(m, c)
    return out


def obligations(contract: Any) -> list[Obligation]:
    return list(Obligation.objects.filter(contract=contract).order_by("seq"))


@pytest.fixture(autouse=True)
def _events_at_once(events_at_once: Any) -> Any:
    """Every finance test dispatches events as they are emitted (tests/conftest.py)."""
    return events_at_once
