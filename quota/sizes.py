"""Sizes as operators write them (R-QUOTA-1): ``2GB``, ``1.5GiB``, ``20MB``, ``512KB``, bytes.

Mail systems count capacity in powers of two (Zimbra, Dovecot), and the regulations' "2 GB" and
"20 MB" mean 2 × 1024³ and 20 × 1024² bytes, so ``GB`` and ``GiB`` are the same unit here. A plain
number is an exact byte count (``20000000``).
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["ACCEPTED_FORMS", "format_size", "parse_size"]

_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgt", start=1):
    for _suffix in (_p, _p + "b", _p + "ib"):
        _UNITS[_suffix] = 1024**_i

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s?([a-z]*)\s*\Z", re.IGNORECASE)

ACCEPTED_FORMS = (
    "a byte count (20000000) or a number with a unit: 512KB, 20MB, 20MiB, 1.5GiB, 2GB, 1TB "
    "(KB = KiB = 1024 bytes, MB = MiB = 1024², GB = GiB = 1024³, per R-QUOTA-1)"
)


def parse_size(value: str | int) -> int:
    """Bytes for ``value``; fractions of a unit are rounded down to whole bytes.

    Raises ValueError naming the accepted forms for anything else (``2 gigs``, ``-1``, ``""``,
    floats and booleans, which YAML produces for ``1.5`` or ``yes``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid size {value!r}: expected {ACCEPTED_FORMS}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: sizes are not negative; {ACCEPTED_FORMS}")
        return value
    match = _SIZE.match(value)
    # A fraction needs a unit: "1.5" alone is not a byte count.
    if not match or match.group(2).lower() not in _UNITS or ("." in value and not match.group(2)):
        raise ValueError(f"invalid size {value!r}: expected {ACCEPTED_FORMS}")
    number, unit = match.groups()
    return int(Decimal(number) * _UNITS[unit.lower()])


def format_size(n: int) -> str:
    """Human form in binary units: ``20 MiB``, ``1.5 GiB`` when exact to two decimals
    (``parse_size`` reads it back), else rounded with two decimals kept (``20.00 MiB`` for
    20 MiB + 1 byte: the trailing zeros mark it as rounded)."""
    if n < 0:
        raise ValueError("sizes are not negative")
    for power, unit in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        scale = 1024**power
        if n >= scale:
            if n % scale == 0:
                return f"{n // scale} {unit}"
            if (n * 100) % scale == 0:
                return f"{Decimal(n) / scale:f}".rstrip("0") + f" {unit}"
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"
