"""One account's mail in and out as Maildir or mbox (``mailserver mailbox import|export``): a user's
own copy, a leaver's archive, what a lawful request asks for (R-ACC-2).

Maildir (Maildir++, as Dovecot and Courier write it): the top directory is INBOX, ``.A.B`` the
folder "A/B" (names in modified UTF-7; a "." inside a name as ``&AC4-``), a message per file with
its bytes exactly as stored, the flags in the file name's ``:2,`` info (D F R S T, keywords as
the letters a-z listed in ``dovecot-keywords``) and INTERNALDATE as the file's mtime.

mbox: one ``<folder>.mbox`` file per folder ("A/B" → ``A/B.mbox``), mboxrd by default (a body line
``>*From `` gets one more ">"; mboxo is read too), lines ending in LF; the ``From `` line carries
INTERNALDATE. A message is written with LF line ends only when all of its lines end in CRLF, and
read back with CRLF only when it has no CR at all, so what was exported comes back byte for byte
(whenever the message ends with a line end, as every message received by SMTP does). mbox keeps
no flags, except that import reads the usual ``Status:``/``X-Status:`` headers.

Import goes through ``messages.append_many`` (the store's one write primitive, the quota
checked) and skips what is already in the folder (``plan.missing``: by Message-ID and size), so an
import run twice or resumed adds each message once.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import imap_utf7

from mailserver.migrate.imap import present_keys
from mailserver.migrate.plan import SourceMessage, message_key
from storage.api import Folder, NewMessage, Store
from storage.errors import Exists, StoreError

_MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
_FLAG_LETTERS = {v: k for k, v in _MAILDIR_FLAGS.items()}
_RD_FROM = re.compile(rb"^(>*From )", re.M)
_ASCTIME = "%a %b %d %H:%M:%S %Y"


class FileFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FileMessage:
    folder: str  # ours, "/"-separated, NFC
    data: bytes
    flags: frozenset[str]
    internaldate: _dt.datetime | None
    where: str  # file (and message number) for reports


@dataclass
class ImportResult:
    folders: set[str] = field(default_factory=set)
    read: int = 0
    present: int = 0
    added: int = 0
    problems: list[str] = field(default_factory=list)


# -- names --------------------------------------------------------------------------------------

def maildir_folder_name(entry: str) -> str:
    """``.A.B`` (modified UTF-7) → "A/B"."""
    return "/".join(imap_utf7.decode(part.encode("ascii", "replace")) for part in entry[1:].split("."))


def maildir_entry(folder: str) -> str:
    """"A/B" → ``.A.B``; a "." inside a name is written ``&AC4-`` (it decodes back to ".")."""
    return "." + ".".join(imap_utf7.encode(part).decode("ascii").replace(".", "&AC4-") for part in folder.split("/"))


# -- reading ------------------------------------------------------------------------------------

def read_source(path: Path, *, folder: str | None = None, mboxo: bool = False) -> Iterator[FileMessage]:
    """Messages of a Maildir (a directory with cur/ or new/), a tree of ``*.mbox`` files, or one
    mbox file (into ``folder``, INBOX by default)."""
    if path.is_file():
        yield from read_mbox(path, folder or "INBOX", mboxo=mboxo)
    elif (path / "cur").is_dir() or (path / "new").is_dir():
        yield from read_maildir(path, folder)
    elif path.is_dir():
        files = sorted(path.rglob("*.mbox"))
        if not files:
            raise FileFormatError(f"{path}: neither a Maildir (cur/, new/) nor a directory of *.mbox files")
        for f in files:
            name = f.relative_to(path).with_suffix("").as_posix()
            yield from read_mbox(f, f"{folder}/{name}" if folder else name, mboxo=mboxo)
    else:
        raise FileFormatError(f"{path}: no such file or directory")


def _keywords(directory: Path) -> dict[str, str]:
    out = {}
    file = directory / "dovecot-keywords"
    if file.is_file():
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            number, _, name = line.partition(" ")
            if number.isdigit() and name and int(number) < 26:
                out[chr(ord("a") + int(number))] = name.strip()
    return out


def read_maildir(root: Path, under: str | None = None) -> Iterator[FileMessage]:
    folders = [(root, "INBOX")] + sorted(
        (p, maildir_folder_name(p.name)) for p in root.iterdir() if p.is_dir() and p.name.startswith(".") and p.name not in (".", ".."))
    for directory, name in folders:
        if under:
            name = under if name == "INBOX" else f"{under}/{name}"
        keywords = _keywords(directory)
        files = [f for sub in ("new", "cur") if (directory / sub).is_dir() for f in (directory / sub).iterdir() if f.is_file()]
        for f in sorted(files, key=lambda p: (p.stat().st_mtime, p.name)):
            _base, sep, info = f.name.partition(":2,")
            flags = set()
            if sep:
                for letter in info:
                    if letter in _MAILDIR_FLAGS:
                        flags.add(_MAILDIR_FLAGS[letter])
                    elif letter in keywords:
                        flags.add(keywords[letter])
            when = _dt.datetime.fromtimestamp(int(f.stat().st_mtime), _dt.UTC)
            yield FileMessage(name, f.read_bytes(), frozenset(flags), when, str(f))


def _from_line_date(line: bytes) -> _dt.datetime | None:
    parts = line.decode("latin-1").split()
    for skip in (2, 3):  # "From sender DATE" (the sender may be missing)
        text = " ".join(parts[skip:skip + 5])
        try:
            return _dt.datetime.strptime(text, _ASCTIME).replace(tzinfo=_dt.UTC)
        except ValueError:
            continue
    return None


def _status_flags(data: bytes) -> frozenset[str]:
    head = data.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    flags = set()
    for name, letters in re.findall(rb"(?im)^(x-status|status):[ \t]*([A-Za-z]*)", head):
        for letter in letters.decode("ascii").upper():
            flag = {"R": "\\Seen", "A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}.get(letter)
            if flag and (letter != "R" or name.lower() == b"status"):
                flags.add(flag)
    return frozenset(flags)


def read_mbox(path: Path, folder: str, *, mboxo: bool = False) -> Iterator[FileMessage]:
    with path.open("rb") as f:
        first = f.readline()
        if not first:
            return
        if not first.startswith(b"From "):
            raise FileFormatError(f"{path}:1: not an mbox file (it must start with a 'From ' line)")
        start_line, number, header, lines = 1, 1, first, []
        for lineno, line in enumerate(f, start=2):
            if line.startswith(b"From "):
                yield _mbox_message(path, folder, number, start_line, header, lines, mboxo)
                start_line, number, header, lines = lineno, number + 1, line, []
            else:
                lines.append(line)
        yield _mbox_message(path, folder, number, start_line, header, lines, mboxo)


def _mbox_message(path, folder, number, start_line, header, lines, mboxo) -> FileMessage:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]  # the blank line that ends every message in an mbox
    data = b"".join(lines)
    data = re.sub(rb"(?m)^>From ", b"From ", data) if mboxo else re.sub(rb"(?m)^>(>*From )", rb"\1", data)
    if b"\r" not in data:
        data = data.replace(b"\n", b"\r\n")
    return FileMessage(folder, data, _status_flags(data), _from_line_date(header), f"{path}:{start_line} (message {number})")


# -- importing ----------------------------------------------------------------------------------

def import_messages(store: Store, account, messages: Iterator[FileMessage], *, quota_limit, max_size: int,
                    progress=None, batch: int = 50) -> ImportResult:
    result = ImportResult()
    folders = {f.name: f for f in store.folders.list_folders(account.id)}
    left: dict[int, object] = {}  # folder id → Counter of messages already there not yet matched
    pending: dict[int, list[tuple[FileMessage, NewMessage]]] = {}

    def flush(folder_id: int) -> None:
        items = pending.pop(folder_id, [])
        if not items:
            return
        try:
            store.messages.append_many(folder_id, [n for _m, n in items], quota_limit=quota_limit)
            result.added += len(items)
        except StoreError:
            for m, n in items:  # find the ones refused
                try:
                    store.messages.append(folder_id, n.blob, flags=n.flags, internaldate=n.internaldate, quota_limit=quota_limit)
                    result.added += 1
                except StoreError as exc:
                    result.problems.append(f"{m.where}: refused: {exc.detail or exc.kind.value}")
        if progress:
            progress(len(items))

    for msg in messages:
        result.read += 1
        target = _folder(store, account.id, msg.folder, folders)
        result.folders.add(target.name)
        if target.id not in left:
            left[target.id] = present_keys(store, target.id)
        when = msg.internaldate or _dt.datetime.now(_dt.UTC)
        key = message_key(_message_id(msg.data), len(msg.data), when)
        if left[target.id][key] > 0:
            left[target.id][key] -= 1
            result.present += 1
            continue
        if len(msg.data) > max_size:
            result.problems.append(f"{msg.where}: too big: {len(msg.data)} bytes (limits.max_message_size is {max_size})")
            continue
        try:
            blob = store.messages.put_blob(msg.data)
        except StoreError as exc:
            result.problems.append(f"{msg.where}: refused: {exc.detail or exc.kind.value}")
            continue
        pending.setdefault(target.id, []).append((msg, NewMessage(blob, msg.flags, msg.internaldate)))
        if len(pending[target.id]) >= batch:
            flush(target.id)
    for folder_id in list(pending):
        flush(folder_id)
    return result


def _message_id(data: bytes) -> str | None:
    from mailserver.migrate.plan import message_id_from_header

    end = data.find(b"\r\n\r\n")
    return message_id_from_header(data[: end + 2 if end >= 0 else len(data)])


def _folder(store: Store, account_id: int, name: str, folders: dict[str, Folder]) -> Folder:
    if name.upper() == "INBOX":
        name = "INBOX"
    if name in folders:
        return folders[name]
    parts = name.split("/")
    for i in range(1, len(parts) + 1):
        level = "/".join(parts[:i])
        if level not in folders:
            try:
                folders[level] = store.folders.create_folder(account_id, level)
            except Exists:
                folders[level] = store.folders.get_folder(account_id, level)
    return folders[name]


# -- exporting ----------------------------------------------------------------------------------

def iter_folder(store: Store, folder: Folder) -> Iterator[tuple[bytes, frozenset[str], _dt.datetime]]:
    view = store.messages.open_view(folder.id, claim_recent=False)
    for batch in store.messages.iter_fetch(folder.id, view.uids, batch=100):
        bodies = store.messages.read_blobs([m.blob for m in batch])
        for m in batch:
            yield bodies[m.blob], m.flags, m.internaldate


def export_maildir(store: Store, folders: list[Folder], root: Path, progress=None) -> int:
    count = 0
    host = socket.gethostname().replace("/", "_").replace(":", "_")
    for folder in folders:
        directory = root if folder.name == "INBOX" else root / maildir_entry(folder.name)
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        keywords: list[str] = []
        for i, (data, flags, when) in enumerate(iter_folder(store, folder)):
            letters = sorted(_FLAG_LETTERS[f] for f in flags if f in _FLAG_LETTERS)
            for k in sorted(f for f in flags if not f.startswith("\\")):
                if k not in keywords and len(keywords) < 26:
                    keywords.append(k)
                if k in keywords:
                    letters.append(chr(ord("a") + keywords.index(k)))
            name = f"{int(when.timestamp())}.M{i}P{os.getpid()}Q{time.monotonic_ns()}.{host}:2,{''.join(letters)}"
            tmp = directory / "tmp" / name
            tmp.write_bytes(data)
            os.utime(tmp, (when.timestamp(), when.timestamp()))
            tmp.rename(directory / "cur" / name)
            count += 1
            if progress:
                progress(1)
        if keywords:
            (directory / "dovecot-keywords").write_text("".join(f"{i} {k}\n" for i, k in enumerate(keywords)), encoding="utf-8")
    return count


def to_mbox_bytes(data: bytes) -> bytes:
    """A stored message as an mboxrd entry's body (LF line ends when all lines end in CRLF)."""
    if b"\r\n" in data and data.count(b"\r") == data.count(b"\r\n") == data.count(b"\n"):
        data = data.replace(b"\r\n", b"\n")
    data = _RD_FROM.sub(rb">\1", data)
    return data if data.endswith(b"\n") else data + b"\n"


def export_mbox(store: Store, folders: list[Folder], root: Path, progress=None) -> int:
    count = 0
    for folder in folders:
        path = root / (folder.name + ".mbox")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            for data, _flags, when in iter_folder(store, folder):
                f.write(b"From MAILER-DAEMON " + when.astimezone(_dt.UTC).strftime(_ASCTIME).encode() + b"\n")
                f.write(to_mbox_bytes(data))
                f.write(b"\n")
                count += 1
                if progress:
                    progress(1)
    return count
