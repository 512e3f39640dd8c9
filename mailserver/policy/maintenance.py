"""The IMAP ``[ALERT]`` of an announced maintenance window (R-OPS-3), pure.

Why ASCII: IMAP response text is 7-bit (RFC 3501 TEXT-CHAR), so the Vietnamese line loses its
tone marks (as the R-PASS-1 alert does); the English line follows, as clients show one line.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from zoneinfo import ZoneInfo

from config.maintenance import Maintenance

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def ascii_vietnamese(text: str) -> str:
    """"Bảo trì hệ thống" → "Bao tri he thong" (đ → d); other non-ASCII dropped."""
    text = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return plain.encode("ascii", "ignore").decode("ascii")


def alert(maintenance: Maintenance, now: dt.datetime) -> bytes | None:
    """``[ALERT] ...`` text for an IMAP login at ``now``, or None outside any announced window."""
    window = maintenance.current(now)
    if window is None:
        return None
    start, end = window.start.astimezone(LOCAL), window.end.astimezone(LOCAL)
    when = f"{start:%H:%M %d/%m/%Y} - {end:%H:%M %d/%m/%Y}"
    vi = f"Bao tri he thong thu {when} (gio Viet Nam), co the gian doan."
    en = f"Mail system maintenance {when} (Vietnam time): service may be interrupted."
    if window.note_vi:
        vi += " " + ascii_vietnamese(window.note_vi)
    if window.note_en:
        en += " " + window.note_en.encode("ascii", "ignore").decode("ascii")
    return f"[ALERT] {vi} / {en}".replace("\r", " ").replace("\n", " ").encode("ascii")
