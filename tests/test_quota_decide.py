"""Quota decisions, threshold crossings, SMTP SIZE and limit resolution (R-QUOTA-1)."""

from __future__ import annotations

import base64
import os
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from config.loader import load_settings

from quota.decide import (
    PROFILE_DEFAULTS,
    QuotaLimits,
    base64_encoded_size,
    decide_attachments,
    decide_delivery,
    highest_usage_accepted,
    resolve_limits,
    smtp_size_limit,
    thresholds_crossed,
)

pytestmark = pytest.mark.requirement("R-QUOTA-1")

GiB, MiB = 1024**3, 1024**2
LAMDONG = PROFILE_DEFAULTS["lamdong"]


@pytest.mark.parametrize(
    ("used", "count", "limits", "size", "ok", "resource", "permanent"),
    [
        (2 * GiB - 1, 0, LAMDONG, 1, True, None, False),  # 1 byte below: a 1-byte message fits
        (2 * GiB - 1, 0, LAMDONG, 2, False, "storage", False),
        (2 * GiB, 0, LAMDONG, 0, True, None, False),  # exactly full, nothing added
        (2 * GiB, 0, LAMDONG, 1, False, "storage", False),
        (0, 0, LAMDONG, 2 * GiB, True, None, False),
        (0, 0, LAMDONG, 2 * GiB + 1, False, "storage", True),  # can never fit: permanent
        (3 * GiB, 0, LAMDONG, 0, False, "storage", False),  # limit lowered below usage
        (0, 99, QuotaLimits(None, None, messages=100), 10, True, None, False),
        (0, 100, QuotaLimits(None, None, messages=100), 10, False, "messages", False),
        (10**15, 10**9, QuotaLimits(None, None), 10**12, True, None, False),  # unlimited
    ],
)
def test_r_quota_1_decide_delivery(
    used: int, count: int, limits: QuotaLimits, size: int, ok: bool, resource: str | None,
    permanent: bool,
) -> None:
    """R-QUOTA-1: used + size may reach the limit exactly, never pass it."""
    decision = decide_delivery(used, count, limits, size)
    assert (decision.ok, decision.resource, decision.permanent) == (ok, resource, permanent)


def test_r_quota_1_copy_of_several_messages_is_decided_at_once() -> None:
    """An IMAP COPY of a set is all or nothing: the set's bytes and count against the limits."""
    limits = QuotaLimits(1000, None, messages=10)
    assert decide_delivery(500, 5, limits, 500, count=5).ok
    assert decide_delivery(500, 5, limits, 500, count=6).resource == "messages"
    assert decide_delivery(500, 5, limits, 501, count=1).resource == "storage"
    assert decide_delivery(0, 0, limits, 10, count=11).permanent


def test_r_quota_1_decide_delivery_refuses_negative_input() -> None:
    with pytest.raises(ValueError):
        decide_delivery(0, 0, LAMDONG, -1)


def test_r_quota_1_full_mailbox_decision_explains_in_both_languages() -> None:
    """The refusal names usage, limit and size, in Vietnamese and English."""
    decision = decide_delivery(2 * GiB - 1, 0, LAMDONG, 2 * MiB)
    assert decision.reason == "mailbox_full"
    assert "2 GiB" in decision.message_vi and "Hộp thư không đủ dung lượng" in decision.message_vi
    assert "2 GiB" in decision.message_en and "2 MiB" in decision.message_en


@pytest.mark.parametrize(
    ("profile", "total", "ok"),
    [
        ("lamdong", 20 * MiB - 1, True),
        ("lamdong", 20 * MiB, True),
        ("lamdong", 20 * MiB + 1, False),
        ("hcm-q4", 15 * MiB, True),
        ("hcm-q4", 15 * MiB + 1, False),
    ],
)
def test_r_quota_1_decide_attachments(profile: str, total: int, ok: bool) -> None:
    """R-QUOTA-1: 20 MB per message (hcm-q4 15 MB) of decoded attachments, inclusive."""
    decision = decide_attachments(total, PROFILE_DEFAULTS[profile])
    assert decision.ok is ok
    if not ok:
        assert decision.permanent and decision.reason == "attachments_too_big"
        assert "20.00 MiB" in decision.message_en or "15.00 MiB" in decision.message_en
        assert "vượt quá giới hạn" in decision.message_vi


@pytest.mark.parametrize(
    ("before", "after", "limit", "expected"),
    [
        (0, 79, 100, []),
        (79, 80, 100, [80]),  # reaching the threshold exactly counts
        (80, 85, 100, []),  # already past: not again
        (0, 100, 100, [80, 90, 100]),
        (85, 95, 100, [90]),
        (99, 100, 100, [100]),
        (2 * GiB - 1, 2 * GiB, 2 * GiB, [100]),
        (1_717_986_917, 1_717_986_918, 2 * GiB, []),  # 80 % of 2 GiB is 1,717,986,918.4
        (1_717_986_918, 1_717_986_919, 2 * GiB, [80]),
        (50, 50, 100, []),
        (95, 50, 100, []),  # usage going down crosses nothing
        (0, 100, None, []),
        (0, 100, 0, []),
    ],
)
def test_r_quota_thresholds_crossed(before: int, after: int, limit: int | None, expected: list[int]) -> None:
    """Warnings at 80/90/100 %: reported on the change that reaches them."""
    assert thresholds_crossed(before, after, limit) == expected


def test_r_quota_thresholds_cross_once_over_many_deliveries() -> None:
    """Filling a mailbox 1 % at a time sends exactly one notice per threshold."""
    limit, used, seen = 1000, 0, []
    for _ in range(120):
        seen += thresholds_crossed(used, used + 10, limit)
        used += 10
    assert seen == [80, 90, 100]


def test_r_quota_thresholds_custom_levels() -> None:
    assert thresholds_crossed(0, 60, 100, thresholds=(50, 75)) == [50]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 56, 57, 58, 1000, 65_536, 99_999])
def test_base64_encoded_size_matches_mime_encoder(n: int) -> None:
    """The overhead formula equals what a MIME encoder writes (76-char lines, CRLF)."""
    assert base64_encoded_size(n) == len(base64.encodebytes(b"x" * n).replace(b"\n", b"\r\n"))


def test_r_quota_1_smtp_size_limit_for_twenty_mib() -> None:
    """SIZE for 20 MiB of attachments: base64 with line breaks plus the 2 MiB allowance."""
    assert smtp_size_limit(20 * MiB) == 28_697_872 + 2 * MiB


def test_r_quota_1_message_with_attachment_at_limit_fits_smtp_size() -> None:
    """A real message (letter, headers, a 20 MiB attachment) is below the SIZE it implies."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Nguyễn Văn An <annv@molisa.gov.vn>"
    msg["To"] = "khaintm@lamdong.gov.vn"
    msg["Subject"] = "Gửi báo cáo tổng hợp quý III"
    msg.set_content("Kính gửi chị,\n\nXin gửi kèm báo cáo.\n" * 200)
    msg.add_alternative("<p>Kính gửi chị,</p>" * 2000, subtype="html")
    msg.add_attachment(os.urandom(20 * MiB), maintype="application", subtype="pdf", filename="bc.pdf")
    assert len(msg.as_bytes()) <= smtp_size_limit(20 * MiB)


def test_r_quota_1_smtp_size_limit_refuses_negative() -> None:
    with pytest.raises(ValueError):
        smtp_size_limit(-1)


def test_r_quota_1_profile_defaults() -> None:
    """lamdong 2 GB / 20 MB, hcm-q4 1 GB / 15 MB, others follow lamdong."""
    assert LAMDONG == QuotaLimits(2 * GiB, 20 * MiB)
    assert PROFILE_DEFAULTS["hcm-q4"] == QuotaLimits(GiB, 15 * MiB)
    assert set(PROFILE_DEFAULTS) == {"molisa", "lamdong", "most", "moj", "hcm-q4", "none"}


def test_r_quota_1_resolve_limits_layers() -> None:
    """Profile default < unit class < account override; each layer replaces only its keys."""
    assert resolve_limits(LAMDONG) == LAMDONG
    unit = {"mailbox_bytes": "5GB"}
    assert resolve_limits(LAMDONG, unit) == QuotaLimits(5 * GiB, 20 * MiB)
    account = {"attachment_bytes": 30 * MiB}
    assert resolve_limits(LAMDONG, unit, account) == QuotaLimits(5 * GiB, 30 * MiB)
    assert resolve_limits(LAMDONG, None, {"mailbox_bytes": None}).mailbox_bytes is None  # unlimited
    special = QuotaLimits(10 * GiB, None)
    assert resolve_limits(LAMDONG, unit, special) == special


@pytest.mark.parametrize(
    "layer", [{"mailbox": "5GB"}, {"mailbox_bytes": "5 gigs"}, {"mailbox_bytes": -1}]
)
def test_r_quota_1_resolve_limits_refuses_bad_layers(layer: dict[str, object]) -> None:
    """Unknown keys and bad sizes in a unit class or override are refused."""
    with pytest.raises(ValueError):
        resolve_limits(LAMDONG, layer)  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", sorted(PROFILE_DEFAULTS))
def test_r_quota_1_defaults_match_the_shipped_yaml_profile(profile: str, tmp_path: Path) -> None:
    """config/profiles/<name>.yaml gives the same limits as PROFILE_DEFAULTS (no silent drift)."""
    config = tmp_path / "mailserver.yaml"
    config.write_text(f"profile: {profile}\n")
    quota = load_settings(config).quota
    assert QuotaLimits(quota.mailbox, quota.attachment) == PROFILE_DEFAULTS[profile]


@pytest.mark.parametrize(
    ("limits", "size", "count", "expected"),
    [
        (QuotaLimits(100, None), 30, 1, (70, None)),
        (QuotaLimits(100, None), 100, 1, (0, None)),  # an empty mailbox takes exactly its limit
        (QuotaLimits(100, None), 101, 1, (-1, None)),  # never fits: nothing accepts it
        (QuotaLimits(None, None), 10**12, 1, (None, None)),
        (QuotaLimits(100, None, 5), 0, 2, (100, 3)),
        (QuotaLimits(None, None, 5), 7, 6, (None, -1)),
    ],
)
def test_r_quota_1_highest_usage_accepted_table(limits, size, count, expected) -> None:
    """The bounds a database applies for decide_delivery, case by case."""
    assert highest_usage_accepted(limits, size, count) == expected


def test_r_quota_1_highest_usage_accepted_agrees_with_decide_delivery() -> None:
    """For every usage, size and limit of a small grid, the bound accepts exactly what
    decide_delivery accepts."""
    for cap in (None, 0, 1, 5, 10):
        for most in (None, 0, 1, 3):
            limits = QuotaLimits(cap, None, most)
            for size in range(0, 12):
                for count in range(0, 4):
                    top_bytes, top_messages = highest_usage_accepted(limits, size, count)
                    for used in range(0, 12):
                        for n in range(0, 5):
                            inside = (top_bytes is None or used <= top_bytes) and (top_messages is None or n <= top_messages)
                            assert decide_delivery(used, n, limits, size, count).ok == inside, (limits, size, count, used, n)


def test_r_quota_1_highest_usage_accepted_refuses_negative_input() -> None:
    with pytest.raises(ValueError):
        highest_usage_accepted(QuotaLimits(1, None), -1)
