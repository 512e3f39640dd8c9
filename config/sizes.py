"""Byte sizes as operators write them (R-QUOTA-1): the one grammar of the YAML file, ``--set``,
``quota set`` and every size the server prints.

Grammar (case-insensitive, surrounding blanks ignored)::

    size   = digits                            ; an exact byte count: 20000000
           | digits [" "] "B"                  ; 100B, 100 B
           | number [" "] prefix ["i"] ["B"]   ; 512K, 512KB, 20M, 20 MB, 20MiB, 1.5GiB, 2 G, 1TB
    number = digits ["." digits]               ; a fraction needs a unit: "1.5" alone is refused
    prefix = "K" | "M" | "G" | "T"             ; powers of 1024

Mail systems count capacity in powers of two (Dovecot's ``storage=1G``, Zimbra), and the
regulations' "2 GB" and "20 MB" mean 2 × 1024³ and 20 × 1024² bytes, so ``K``, ``KB`` and
``KiB`` are the same unit here (so are M/MB/MiB, G/GB/GiB, T/TB/TiB). The shipped profiles write
``2GiB`` and ``20MiB``, which mean what they always meant. Fractions of a unit round down to whole
bytes; at most one blank between number and unit; negative values, exponents, decimal commas,
booleans and YAML floats (``mailbox: 1.5``) are refused with the list of accepted forms.

It lives in ``config`` because config may not import ``quota``; ``quota`` and the CLI import it
from here.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["ACCEPTED_FORMS", "format_limit", "format_size", "parse_size"]

_PREFIXES = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"\s*([0-9]+)(?:\.([0-9]+))? ?([kmgt]?)(i?)(b?)\s*\Z", re.IGNORECASE | re.ASCII)

ACCEPTED_FORMS = (
    "a byte count (20000000) or a number with a unit: 512KB, 20MB, 20MiB, 1.5GiB, 2GB, 1TB, 20M, "
    "2 GiB (K = KB = KiB = 1024 bytes, M = MB = MiB = 1024², G = GB = GiB = 1024³, per R-QUOTA-1)"
)


def parse_size(value: str | int) -> int:
    """Bytes for ``value`` (a string in the grammar above, or a non-negative int from YAML).

    Raises ValueError naming the value and the accepted forms for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid size {value!r}: expected {ACCEPTED_FORMS}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: sizes are not negative; {ACCEPTED_FORMS}")
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"invalid size {value!r}: expected {ACCEPTED_FORMS}")
    whole, fraction, prefix, binary, byte = match.groups()
    # "i" only inside KiB/MiB/...; a fraction only with a prefix (no "1.5" or "1.5B").
    if (binary and not (prefix and byte)) or (fraction is not None and not prefix):
        raise ValueError(f"invalid size {value!r}: expected {ACCEPTED_FORMS}")
    scale = _PREFIXES[prefix.lower()] if prefix else 1
    return int(Decimal(f"{whole}.{fraction or 0}") * scale)


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


def format_limit(n: int | None) -> str:
    """``format_size`` of a limit, where None (null in the YAML file) means ``unlimited``."""
    return "unlimited" if n is None else format_size(n)
