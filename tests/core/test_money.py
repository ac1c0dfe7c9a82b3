from decimal import Decimal

import pytest

from weiying.core.money import allocate, money, split_vat, to_decimal


@pytest.mark.parametrize(
    ("gross", "rate", "net", "vat"),
    [
        ("100.00", "0.13", "88.50", "11.50"),
        ("99.99", "0.09", "91.73", "8.26"),
        ("0.01", "0.06", "0.01", "0.00"),
        ("33.33", "0.01", "33.00", "0.33"),
        ("1000000.00", "0.13", "884955.75", "115044.25"),
    ],
)
def test_vat_split_adds_up_to_the_gross(gross, rate, net, vat):
    got_net, got_vat = split_vat(gross, rate)
    assert (got_net, got_vat) == (Decimal(net), Decimal(vat))
    assert got_net + got_vat == Decimal(gross)


def test_rounding_is_half_up_to_the_fen():
    assert money("0.005") == Decimal("0.01")
    assert money("2.675") == Decimal("2.68")
    assert money("-0.005") == Decimal("-0.01")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        to_decimal(0.1)


def test_allocation_gives_the_last_part_the_remainder():
    parts = allocate("100.00", [Decimal(1), Decimal(1), Decimal(1)])
    assert parts == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert sum(parts) == Decimal("100.00")
