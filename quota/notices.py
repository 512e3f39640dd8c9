"""Quota warning notices (R-QUOTA-2): the text sent when usage crosses a threshold.

Vietnamese first, English below (R-TEXT-1: the caller sends it as UTF-8). Pure text: who gets it
(the owner; for a unit mailbox the head and delegates) and when (``thresholds_crossed``) is the
caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.sizes import format_size

__all__ = ["Notice", "quota_warning", "size_en", "size_vi"]


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


def size_vi(n: int) -> str:
    """A size as Vietnamese text writes it: a comma before the decimals, ``982,04 KB``
    (units of 1024, as mail systems count them: R-QUOTA-1)."""
    return size_en(n).replace(".", ",")


def size_en(n: int) -> str:
    """A size for the English text: ``982.04 KB``, ``2 GB`` (units of 1024)."""
    return format_size(n).replace("iB", "B")


def quota_warning(threshold: int, used: int, limit: int, address: str) -> Notice:
    """The notice for crossing ``threshold`` % of ``limit`` bytes with ``used`` bytes. The
    subject and the body name the same percentage: the threshold the notice is for (two
    thresholds crossed at once are two notices, each with its own)."""
    if limit <= 0:
        raise ValueError("a warning needs a positive limit")
    if threshold >= 100:
        subject = "Hộp thư đã đầy / Mailbox full"
        head_vi = f"Hộp thư {address} đã đầy: đã dùng {size_vi(used)} trên tổng dung lượng {size_vi(limit)}."
        head_en = f"The mailbox {address} is full: {size_en(used)} used of its {size_en(limit)}."
        state_vi = "Thư gửi đến sẽ bị từ chối cho đến khi có thêm dung lượng trống."
        state_en = "Incoming mail is refused until space is freed."
    else:
        subject = f"Hộp thư đã dùng {threshold}% dung lượng / Mailbox {threshold}% full"
        head_vi = (f"Hộp thư {address} đã dùng {threshold}% dung lượng: "
                   f"{size_vi(used)} trên tổng dung lượng {size_vi(limit)}.")
        head_en = f"The mailbox {address} has used {threshold}% of its space: {size_en(used)} of {size_en(limit)}."
        state_vi = "Khi hộp thư đầy, thư gửi đến sẽ bị từ chối."
        state_en = "When the mailbox is full, incoming mail will be refused."
    body = (
        f"{head_vi}\n{state_vi}\n\n"
        "Để giải phóng dung lượng, đề nghị:\n"
        "- xóa thư rác, thư quảng cáo và các thư không còn cần thiết;\n"
        "- làm rỗng thư mục Thùng rác (Trash) và Thư rác (Junk);\n"
        "- lưu các thư quan trọng về máy tính rồi xóa khỏi máy chủ.\n"
        "\n-----\n\n"
        f"{head_en}\n{state_en}\n\n"
        "To free space:\n"
        "- delete spam, advertising and mail you no longer need;\n"
        "- empty the Trash and Junk folders;\n"
        "- save important mail to your computer, then delete it from the server.\n"
    )
    return Notice(subject, body)


def retention_warning(address: str, folders: list[tuple[str, int, int]], when: str, rule: str) -> Notice:
    """The notice a week ahead of a retention run (R-QUOTA-2: most art. 17.3, hcm-q4 art.
    11.8): ``folders`` are (folder, messages, bytes) that the run on ``when`` (a date as
    dd/mm/yyyy) will delete; ``rule`` says which, e.g. "older than 6 months" / "quá 6 tháng"."""
    if not folders:
        raise ValueError("a retention notice needs at least one folder")
    total = sum(n for _, n, _ in folders)
    lines_vi = "".join(f"- {name}: {n} thư, {size_vi(size)}\n" for name, n, size in folders)
    lines_en = "".join(f"- {name}: {n} message(s), {size_en(size)}\n" for name, n, size in folders)
    subject = f"{total} thư sẽ bị xoá ngày {when} / {total} message(s) will be deleted on {when}"
    body = (
        f"Theo quy chế, thư lưu trên máy chủ {rule.split(' / ')[0]} được xoá định kỳ. Ngày {when}, "
        f"máy chủ sẽ xoá {total} thư trong hộp thư {address}:\n{lines_vi}\n"
        "Hãy lưu các thư cần giữ về máy tính (hoặc chuyển cho văn thư lưu trữ) trước ngày đó.\n"
        "\n-----\n\n"
        f"Under the regulation, mail on the server {rule.split(' / ')[-1]} is deleted periodically. On {when} "
        f"the server will delete {total} message(s) from the mailbox {address}:\n{lines_en}\n"
        "Save what you need to keep on your computer (or hand it to the records office) before then.\n"
    )
    return Notice(subject, body)
