"""Quota warning notices (R-QUOTA-2): the text sent when usage crosses a threshold.

Vietnamese first, English below (R-TEXT-1: the caller sends it as UTF-8). Pure text: who gets it
(the owner; for a unit mailbox the head and delegates) and when (``thresholds_crossed``) is the
caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.sizes import format_size

__all__ = ["Notice", "quota_warning"]


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


def quota_warning(threshold: int, used: int, limit: int, address: str) -> Notice:
    """The notice for crossing ``threshold`` % of ``limit`` bytes with ``used`` bytes."""
    if limit <= 0:
        raise ValueError("a warning needs a positive limit")
    percent = used * 100 // limit
    used_text, limit_text = format_size(used), format_size(limit)
    if threshold >= 100:
        subject = "Hộp thư đã đầy / Mailbox full"
        state_vi = "Hộp thư đã đầy: thư gửi đến sẽ bị từ chối cho đến khi có thêm dung lượng trống."
        state_en = "The mailbox is full: incoming mail is refused until space is freed."
    else:
        subject = f"Hộp thư đã dùng {threshold}% dung lượng / Mailbox {threshold}% full"
        state_vi = "Khi hộp thư đầy, thư gửi đến sẽ bị từ chối."
        state_en = "When the mailbox is full, incoming mail will be refused."
    body = (
        f"Hộp thư {address} đã sử dụng {used_text} trên tổng dung lượng {limit_text} "
        f"({percent}%).\n{state_vi}\n\n"
        "Để giải phóng dung lượng, đề nghị:\n"
        "- xóa thư rác, thư quảng cáo và các thư không còn cần thiết;\n"
        "- làm rỗng thư mục Thùng rác (Trash) và Thư rác (Junk);\n"
        "- lưu các thư quan trọng về máy tính rồi xóa khỏi máy chủ.\n"
        "\n-----\n\n"
        f"The mailbox {address} uses {used_text} of its {limit_text} ({percent}%).\n{state_en}\n\n"
        "To free space:\n"
        "- delete spam, advertising and mail you no longer need;\n"
        "- empty the Trash and Junk folders;\n"
        "- save important mail to your computer, then delete it from the server.\n"
    )
    return Notice(subject, body)
