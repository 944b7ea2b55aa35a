"""Modbus addresses: the 0-based protocol address, and the register numbers manuals print.

A tag's ``address`` is the **protocol address**: the number that travels in the request,
counted from 0 in each table (holding register 0 is the first holding register). Device
manuals often print **register numbers** instead, counted from 1 with the table in the
leading digit (Modicon convention): 40001 is holding register address 0, 30001 input
register 0, 10001 discrete input 0, 00001 coil 0; six digits (400001-465536) reach every
address. A tag may give its register number as ``register:``; the agent turns it into the
table and address it reads (pure)::

    >>> from_register_number(40001)
    ('holding', 0)
    >>> from_register_number(300012)
    ('input', 11)

An ``address`` that looks like a register number (10001-19999, 30001-49999) is refused at
load unless the controller says its protocol addresses really are that high
(`register_number_hint`): written for holding register 40001, it would silently read
address 40001, one of the two worst kinds of wrong (nothing, or another value).
"""

from __future__ import annotations

#: The leading digit of a register number and the table it names (2 is not used).
PREFIX_TABLE = {0: "coil", 1: "discrete", 3: "input", 4: "holding"}

REGISTER_NUMBER_FORMS = (
    "00001-09999 coils, 10001-19999 discrete inputs, 30001-39999 input registers, "
    "40001-49999 holding registers, or six digits (100001-165536, 300001-365536, "
    "400001-465536)"
)


def from_register_number(number: int) -> tuple[str, int]:
    """The table and 0-based protocol address of a 5- or 6-digit register number.

    Raises `ValueError` naming the forms for a number that is none of them. Coils past 9999
    have no number an integer can spell (their six digits start with 0): give their address.
    """
    if 1 <= number <= 9999:
        return "coil", number - 1
    if 10001 <= number <= 49999:
        prefix, rest = divmod(number, 10000)
        if prefix in PREFIX_TABLE and rest >= 1:
            return PREFIX_TABLE[prefix], rest - 1
    if 100001 <= number <= 465536:
        prefix, rest = divmod(number, 100000)
        if prefix in PREFIX_TABLE and 1 <= rest <= 65536:
            return PREFIX_TABLE[prefix], rest - 1
    raise ValueError(
        f"register {number} is not a Modbus register number ({REGISTER_NUMBER_FORMS}); "
        "fix: correct it, or give the 0-based protocol address as `address:` instead"
    )


def register_number_hint(address: int) -> tuple[str, int] | None:
    """For an ``address`` that reads like a 5-digit register number (10001-19999 or
    30001-49999), the table and protocol address it would stand for; else None."""
    if 10001 <= address <= 19999 or 30001 <= address <= 49999:
        return from_register_number(address)
    return None
