"""EAN-18 connection point codes (GS1 GSRN): 17 digits and a mod-10 check digit. Pure module: no Django."""

from __future__ import annotations

import re

EAN18 = re.compile(r"^[0-9]{18}$")


def check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it: weights 3, 1, 3, ... from the right."""
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def ean18_is_valid(code: str) -> bool:
    return bool(EAN18.match(code)) and check_digit(code[:17]) == int(code[17])


def ean18_complete(body17: str) -> str:
    """Append the check digit to 17 digits (for fixtures and the demo)."""
    if not re.fullmatch(r"[0-9]{17}", body17):
        raise ValueError("give 17 digits")
    return f"{body17}{check_digit(body17)}"
