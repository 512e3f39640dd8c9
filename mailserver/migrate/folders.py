"""Source folder → our folder name and special use (RFC 6154), as pure functions.

Servers spell their special folders in many ways (Exchange "Sent Items", Zimbra "Sent",
Thunderbird-made "Thư đã gửi"); the attribute the server announces wins, a well-known name is
matched only when no source folder announces that attribute. Our hierarchy delimiter is "/".
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: RFC 6154 attributes that name one of our folders (storage.api.DEFAULT_FOLDERS) or Archive.
OURS = {"\\sent": ("Sent", "\\Sent"), "\\drafts": ("Drafts", "\\Drafts"), "\\trash": ("Trash", "\\Trash"),
        "\\junk": ("Junk", "\\Junk"), "\\archive": ("Archive", "\\Archive")}

#: Views of mail kept elsewhere (Gmail "All Mail", "Starred"): copying them would duplicate it.
VIRTUAL = frozenset({"\\all", "\\flagged"})

#: Folders that hold no messages.
NOSELECT = frozenset({"\\noselect", "\\nonexistent"})

#: Well-known names (compared case-insensitively, NFC) of special folders without an attribute.
WELL_KNOWN = {
    "\\sent": ("sent", "sent items", "sent messages", "sent mail", "thư đã gửi", "đã gửi", "hộp thư đi"),
    "\\drafts": ("drafts", "draft", "thư nháp", "nháp"),
    "\\trash": ("trash", "deleted items", "deleted messages", "bin", "thùng rác", "đã xóa", "đã xoá"),
    "\\junk": ("junk", "spam", "junk e-mail", "junk email", "bulk mail", "thư rác"),
    "\\archive": ("archive", "archives", "lưu trữ"),
}


@dataclass(frozen=True, slots=True)
class SourceFolder:
    name: str  # as the source lists it, modified UTF-7 decoded
    delimiter: str | None
    attributes: frozenset[str]  # lower-case, e.g. {"\\sent", "\\hasnochildren"}


@dataclass(frozen=True, slots=True)
class Mapping:
    source: str
    target: str | None  # None: not copied (``reason`` says why)
    special_use: str | None = None
    reason: str = ""


def _split(folder: SourceFolder, prefix: str) -> list[str]:
    name = folder.name
    if prefix and name.startswith(prefix) and name != prefix:
        name = name[len(prefix):]  # Courier/Cyrus "INBOX." personal namespace
    parts = name.split(folder.delimiter) if folder.delimiter else [name]
    # our delimiter inside a name from a "."-delimited server would make a level of its own
    return [unicodedata.normalize("NFC", p.replace("/", "-")).strip() or "_" for p in parts]


def _target_name(parts: list[str]) -> str:
    if parts[0].upper() == "INBOX":
        parts = ["INBOX", *parts[1:]]
    return "/".join(parts)


def map_folders(folders: list[SourceFolder], prefix: str = "") -> list[Mapping]:
    """Where each source folder goes, in the source's order. ``prefix``: the source's personal
    namespace prefix (NAMESPACE), removed from names."""
    announced = {a for f in folders for a in f.attributes if a in OURS}
    guessed: dict[str, str] = {}  # attribute → the one source folder matched by its name
    for f in folders:
        if f.attributes & (NOSELECT | VIRTUAL) or any(a in OURS for a in f.attributes):
            continue
        parts = _split(f, prefix)
        if len(parts) != 1 and not (len(parts) == 2 and parts[0].upper() == "INBOX"):
            continue  # only top level (or directly under INBOX) is a special folder by name
        key = parts[-1].casefold()
        for attr, names in WELL_KNOWN.items():
            if attr not in announced and attr not in guessed and key in names:
                guessed[attr] = f.name
    by_name = {v: k for k, v in guessed.items()}
    out = []
    for f in folders:
        if f.attributes & VIRTUAL:
            out.append(Mapping(f.name, None, reason="virtual folder (its mail is in other folders)"))
            continue
        attr = next((a for a in sorted(f.attributes) if a in OURS), None) or by_name.get(f.name)
        if attr is not None:
            name, use = OURS[attr]
            out.append(Mapping(f.name, name, use))
        elif f.attributes & NOSELECT:
            out.append(Mapping(f.name, None))  # a level of the hierarchy: made with its children
        else:
            out.append(Mapping(f.name, _target_name(_split(f, prefix))))
    return out


def ancestors(name: str) -> list[str]:
    """"a/b/c" → ["a", "a/b"]: the levels that must exist before it."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
