"""A booked contract for the desk page, export and API tests."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import user_of
from weiying.finance import services
from weiying.pipeline.services import contracts as svc


@pytest.fixture(name="booked")
def booked_fixture(company, products, deal):
    """Team A's contract: 10 boxes (11,300.00), 3,390.00 received, all accepted on 8 Nov; a
    spend on its channel; an invoice of 5,000.00."""
    finance = user_of(company.finance)
    contract = deal([{"product": products.box, "quantity": "10", "unit_price": "1130.00"}],
                    signed_on=dt.date(2026, 11, 2))
    svc.record_receipt(actor=finance, contract=contract, amount="3390.00",
                       received_on=dt.date(2026, 11, 5), method="bank")
    svc.record_delivery(actor=user_of(company.operations), contract=contract,
                        delivered_on=dt.date(2026, 11, 6))
    svc.record_acceptance(actor=user_of(company.operations), contract=contract,
                          accepted_on=dt.date(2026, 11, 8))
    services.issue_invoice(actor=finance, contract=contract, number="FP0001", kind="special",
                           issued_on=dt.date(2026, 11, 9), gross="5000.00", vat_rate="0.13")
    services.record_marketing_spend(actor=finance, channel="广告", spent_on=dt.date(2026, 11, 3),
                                    amount="800.00")
    contract.refresh_from_db()
    return contract
