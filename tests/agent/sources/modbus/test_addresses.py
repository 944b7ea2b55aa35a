"""Register numbers (the 1-based 40001 of device manuals) and the 0-based protocol addresses
the agent sends (pure, table-driven, and every six-digit number round-trips)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sources.modbus.addresses import from_register_number, register_number_hint


@pytest.mark.parametrize(
    ("number", "table", "address"),
    [
        (1, "coil", 0),
        (9999, "coil", 9998),
        (10001, "discrete", 0),
        (19999, "discrete", 9998),
        (30001, "input", 0),
        (39999, "input", 9998),
        (40001, "holding", 0),
        (40100, "holding", 99),
        (49999, "holding", 9998),
        (100001, "discrete", 0),
        (300001, "input", 0),
        (400001, "holding", 0),
        (465536, "holding", 65535),
    ],
)
def test_register_numbers(number: int, table: str, address: int) -> None:
    assert from_register_number(number) == (table, address)


@pytest.mark.parametrize(
    "number", [0, 10000, 20001, 29999, 30000, 40000, 50000, 99999, 100000, 200001, 465537, -1]
)
def test_numbers_that_are_no_register_number(number: int) -> None:
    with pytest.raises(ValueError, match=f"register {number} is not a Modbus register number"):
        from_register_number(number)


@given(st.sampled_from([("discrete", 1), ("input", 3), ("holding", 4)]),
       st.integers(0, 65535))
def test_six_digits_reach_every_address(table_prefix: tuple[str, int], address: int) -> None:
    table, prefix = table_prefix
    assert from_register_number(prefix * 100000 + address + 1) == (table, address)


@pytest.mark.parametrize(
    ("address", "hint"),
    [(0, None), (9999, None), (10000, None), (10001, ("discrete", 0)), (20001, None),
     (30001, ("input", 0)), (40001, ("holding", 0)), (49999, ("holding", 9998)), (50000, None),
     (65535, None)],
)
def test_which_addresses_look_like_register_numbers(
    address: int, hint: tuple[str, int] | None
) -> None:
    assert register_number_hint(address) == hint
