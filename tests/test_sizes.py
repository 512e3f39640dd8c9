"""The one size grammar (config/sizes.py, R-QUOTA-1): parser, formatter, and the YAML file and
``quota set`` accepting the same strings."""

from __future__ import annotations

import json

import click
import pytest

from config.loader import ConfigError, load_settings
from config.sizes import format_limit, format_size, parse_size
from mailserver.cli import cli

GiB, MiB, KiB = 1024**3, 1024**2, 1024

GOOD = [
    ("2GB", 2 * GiB),  # R-QUOTA-1: GB counted as mail systems count it
    ("2GiB", 2 * GiB),
    ("2 GB", 2 * GiB),
    ("2 GiB", 2 * GiB),
    ("2gb", 2 * GiB),
    ("2G", 2 * GiB),  # Dovecot's storage=2G
    ("2 g", 2 * GiB),
    ("1GB", GiB),
    ("1.5GiB", 3 * GiB // 2),
    ("1.5 G", 3 * GiB // 2),
    ("20MB", 20 * MiB),
    ("20 MB", 20 * MiB),
    ("20MiB", 20 * MiB),
    ("20M", 20 * MiB),
    ("20m", 20 * MiB),
    ("15MB", 15 * MiB),
    ("512KB", 512 * KiB),
    ("512K", 512 * KiB),
    ("20 k", 20 * KiB),
    ("64kib", 64 * KiB),
    ("1TB", 1024**4),
    ("1 T", 1024**4),
    ("100B", 100),
    ("100 b", 100),
    ("20000000", 20_000_000),  # a plain number is an exact byte count
    ("0", 0),
    ("1.1KB", 1126),  # fractions of a unit round down to whole bytes
    (" 20MiB ", 20 * MiB),
]

BAD = ["2 gigs", "-1", "", "   ", "1.5", "1.5B", "2  GB", "GB", "2GBB", "1e3", "2,5GB", "2.GB", ".5GB",
       "20Mi", "20 iB", "2 PB", "5 parsecs", "٣MB", "+5MB"]


@pytest.mark.parametrize(("value", "expected"), [*GOOD, (20_000_000, 20_000_000), (0, 0)])
def test_r_quota_1_parse_size(value: str | int, expected: int) -> None:
    """R-QUOTA-1: 2G = 2GB = 2GiB = 2 × 1024³; 20M = 20MB = 20MiB; plain integers are bytes."""
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [*BAD, -1, 1.5, True, None])
def test_r_quota_1_parse_size_refuses_with_accepted_forms(value: object) -> None:
    """Bad values are refused with a message naming the value and listing the accepted forms."""
    with pytest.raises(ValueError) as err:
        parse_size(value)  # type: ignore[arg-type]
    assert repr(value) in str(err.value)
    assert "20MiB" in str(err.value) and "1.5GiB" in str(err.value) and "20M," in str(err.value)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (KiB, "1 KiB"),
        (1500, "1.46 KiB"),
        (20 * MiB, "20 MiB"),
        (20 * MiB + 1, "20.00 MiB"),
        (20 * MiB - 1, "20.00 MiB"),
        (3 * GiB // 2, "1.5 GiB"),
        (5 * GiB // 4, "1.25 GiB"),
        (2 * GiB, "2 GiB"),
        (10 * GiB, "10 GiB"),
        (3 * 1024**4, "3 TiB"),
        (2048 * 1024**4, "2048 TiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    """Binary units; exact values without decimals, rounded ones keep two decimals."""
    assert format_size(n) == text


@pytest.mark.parametrize(("n", "text"), [(None, "unlimited"), (0, "0 B"), (2 * GiB, "2 GiB")])
def test_format_limit(n: int | None, text: str) -> None:
    """A limit of None (null in the YAML file) prints as unlimited; others as format_size."""
    assert format_limit(n) == text


@pytest.mark.parametrize("n", [0, 100, KiB, 512 * KiB, 20 * MiB, 3 * GiB // 2, 2 * GiB, 5 * 1024**4])
def test_format_size_round_trips_exact_values(n: int) -> None:
    """What format_size prints for an exact value, parse_size reads back (CLI shows → CLI sets)."""
    assert parse_size(format_size(n)) == n


def test_format_size_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_size(-1)


def _quota_set_size_type() -> click.ParamType:
    quota_set = cli.commands["quota"].commands["set"]  # type: ignore[attr-defined]
    return next(p for p in quota_set.params if p.name == "size").type


def _yaml(tmp_path, text: str) -> int | None:
    path = tmp_path / "mailserver.yaml"
    path.write_text(f"quota:\n  mailbox: {json.dumps(text, ensure_ascii=False)}\n", encoding="utf-8")
    return load_settings(path).quota.mailbox


def _quota_set(text: str) -> int | None:
    try:
        return _quota_set_size_type().convert(text, None, None)
    except click.BadParameter:
        return None


@pytest.mark.parametrize("text", [t for t, _ in GOOD] + [t for t in BAD if t.strip()])
def test_yaml_and_quota_set_accept_the_same_sizes(tmp_path, text: str) -> None:
    """The YAML file and `mailserver quota set` read a size string alike: same bytes, or both refuse."""
    try:
        from_yaml = _yaml(tmp_path, text)
    except ConfigError as err:
        assert (err.line, err.key) == (2, "quota.mailbox") and repr(text) in err.message
        from_yaml = None
    assert from_yaml == _quota_set(text)
