"""A report page shows its largest rows and says how many more the export holds."""

from __future__ import annotations

import datetime as dt

from tests.conftest import user_of
from weiying.core.money import format_cny
from weiying.pipeline.services import contracts as svc


def test_a_long_report_shows_its_largest_rows_and_counts_the_rest(company, products, deal,
                                                                  login, monkeypatch):
    from weiying.finance import views

    contract = deal([{"product": products.box, "quantity": "1", "unit_price": "1130.00"},
                     {"product": products.setup, "quantity": "1", "unit_price": "5000.00"}],
                    signed_on=dt.date(2026, 5, 4))
    ops = user_of(company.operations)
    svc.record_delivery(actor=ops, contract=contract, delivered_on=dt.date(2026, 5, 5))
    svc.record_acceptance(actor=ops, contract=contract, accepted_on=dt.date(2026, 5, 6))
    monkeypatch.setattr(views, "SHOWN_ROWS", 1)
    page = login(company.finance, language="en").get(
        "/finance/revenue/", {"start": "2026-05-01", "end": "2026-05-31", "by": "product"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "<td>实施</td>" in html and "<td>智能柜</td>" not in html  # the larger row only
    assert "The largest rows are shown; 1 more row is in the export." in html
    # The total still counts every row: 1,000.00 + 4,716.98 net.
    assert format_cny(contract.total_net) in html


def test_negative_amounts_read_minus_yuan():
    from decimal import Decimal

    assert format_cny(Decimal("-11840318.58")) == "-¥11,840,318.58"
    assert format_cny(Decimal("0.004")) == "¥0.00"
