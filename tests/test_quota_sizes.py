"""Size values as operators write them (R-QUOTA-1)."""

from __future__ import annotations

import pytest

from quota.sizes import format_size, parse_size

GiB, MiB, KiB = 1024**3, 1024**2, 1024


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2GB", 2 * GiB),  # R-QUOTA-1: GB counted as mail systems count it
        ("2GiB", 2 * GiB),
        ("2 GB", 2 * GiB),
        ("2gb", 2 * GiB),
        ("1GB", GiB),
        ("1.5GiB", 3 * GiB // 2),
        ("20MB", 20 * MiB),
        ("20MiB", 20 * MiB),
        ("15MB", 15 * MiB),
        ("512KB", 512 * KiB),
        ("512K", 512 * KiB),
        ("1TB", 1024**4),
        ("100B", 100),
        ("20000000", 20_000_000),  # a plain number is an exact byte count
        (20_000_000, 20_000_000),
        (0, 0),
        ("1.1KB", 1126),  # fractions of a unit round down to whole bytes
        (" 20MiB ", 20 * MiB),
    ],
)
def test_r_quota_1_parse_size(value: str | int, expected: int) -> None:
    """R-QUOTA-1: 2GB = 2GiB = 2 × 1024³; 20MB = 20MiB; plain integers are bytes."""
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    "value", ["2 gigs", "-1", -1, "", "   ", "1.5", "2  GB", "GB", "2GBB", "1e3", "2,5GB", 1.5, True, None]
)
def test_r_quota_1_parse_size_refuses_with_accepted_forms(value: object) -> None:
    """Bad values are refused with a message that lists the accepted forms."""
    with pytest.raises(ValueError) as err:
        parse_size(value)  # type: ignore[arg-type]
    assert "20MiB" in str(err.value) and "1.5GiB" in str(err.value)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (KiB, "1 KiB"),
        (20 * MiB, "20 MiB"),
        (20 * MiB + 1, "20.00 MiB"),
        (20 * MiB - 1, "20.00 MiB"),
        (3 * GiB // 2, "1.5 GiB"),
        (5 * GiB // 4, "1.25 GiB"),
        (2 * GiB, "2 GiB"),
        (10 * GiB, "10 GiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    """Binary units; exact values without decimals, rounded ones keep two decimals."""
    assert format_size(n) == text


@pytest.mark.parametrize("n", [0, 100, KiB, 512 * KiB, 20 * MiB, 3 * GiB // 2, 2 * GiB, 5 * 1024**4])
def test_format_size_round_trips_exact_values(n: int) -> None:
    """What format_size prints for an exact value, parse_size reads back (CLI shows → CLI sets)."""
    assert parse_size(format_size(n)) == n


def test_format_size_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_size(-1)
