"""Copy one account from a live IMAP server into ours (``mailserver migrate imap``).

Every folder, message, flag, keyword and INTERNALDATE; the bytes stored exactly as the source
serves them. Messages go in through ``messages.append_many`` (the store's one write primitive,
the account's quota checked in the commit), a batch per transaction, so an interrupted run (even
``kill -9``) leaves whole messages only, and the next run copies what ``plan.missing`` finds
missing: resumable and incremental, never a duplicate. A message that cannot be copied (too big,
refused by the store, not served by the source) is reported and the run goes on.
"""

from __future__ import annotations

import datetime as _dt
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailserver.migrate.folders import Mapping, SourceFolder, ancestors, map_folders
from mailserver.migrate.plan import SourceMessage, message_id_from_header, message_key, missing, our_flags
from mailserver.migrate.sources import SourceAccount
from storage.api import Folder, NewMessage, Store
from storage.errors import Exists, NoQuota, StoreError

_HEAD = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_SCAN = ["RFC822.SIZE", "INTERNALDATE", "FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]


@dataclass(frozen=True)
class SourceServer:
    host: str
    port: int
    tls: bool = False  # implicit TLS (IMAPS)
    starttls: bool = False
    ssl_context: ssl.SSLContext | None = None
    master_user: str | None = None
    master_password: str | None = None
    timeout: float = 120.0
    batch_messages: int = 50
    batch_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Problem:
    folder: str
    uid: int | None
    reason: str


@dataclass
class AccountResult:
    address: str
    folders: int = 0
    source_messages: int = 0
    present: int = 0  # already here before this run
    copied: int = 0
    copied_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    error: str | None = None  # the account could not be (fully) migrated
    seconds: float = 0.0


class Progress(Protocol):
    def status(self, text: str) -> None: ...

    def start(self, messages: int, size: int) -> None: ...

    def advance(self, messages: int, size: int) -> None: ...


class Quota(Protocol):
    def delivery_limit(self, account) -> int | None: ...


class MigrationError(Exception):
    """The account cannot be migrated (login refused, connection lost, no account here)."""


def connect(server: SourceServer, account: SourceAccount) -> IMAPClient:
    try:
        client = IMAPClient(server.host, port=server.port, ssl=server.tls, ssl_context=server.ssl_context,
                            timeout=server.timeout)
    except (OSError, IMAPClientError) as exc:
        raise MigrationError(f"cannot connect to {server.host}:{server.port}: {exc}") from None
    client.normalise_times = False  # INTERNALDATE with its zone, as the source keeps it
    try:
        if server.starttls:
            client.starttls(server.ssl_context)
        if account.source_password is not None:
            client.login(account.source_user, account.source_password)
        else:
            client.plain_login(server.master_user, server.master_password, authorization_identity=account.source_user)
    except LoginError:
        _close(client)
        how = "its password" if account.source_password is not None else f"master login {server.master_user}"
        raise MigrationError(f"the source refused the login of {account.source_user} ({how})") from None
    except (OSError, IMAPClientError) as exc:
        _close(client)
        raise MigrationError(f"login to {server.host}:{server.port} failed: {exc}") from None
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def source_folders(client: IMAPClient) -> tuple[list[SourceFolder], str]:
    """The source's folders (names decoded from modified UTF-7 by imapclient) and its personal
    namespace prefix."""
    prefix = ""
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix = _text(personal[0][0])
    out = []
    for flags, delimiter, name in client.list_folders():
        attrs = frozenset(_text(f).lower() for f in flags)
        out.append(SourceFolder(_text(name), _text(delimiter) if delimiter else None, attrs))
    return out, prefix


def _ensure_folder(store: Store, account_id: int, mapping: Mapping, ours: dict[str, Folder]) -> Folder:
    if mapping.special_use:
        for f in ours.values():
            if f.special_use and f.special_use.lower() == mapping.special_use.lower():
                return f
    if mapping.target in ours:
        return ours[mapping.target]
    for parent in ancestors(mapping.target):
        if parent not in ours:
            _create(store, account_id, parent, None, ours)
    return _create(store, account_id, mapping.target, mapping.special_use, ours)


def _create(store: Store, account_id: int, name: str, special_use: str | None, ours: dict[str, Folder]) -> Folder:
    try:
        folder = store.folders.create_folder(account_id, name, special_use=special_use)
    except Exists:  # made meanwhile (the user's client, another run)
        folder = store.folders.get_folder(account_id, name)
    ours[folder.name] = folder
    return folder


def present_keys(store: Store, folder_id: int) -> Counter:
    """Our messages in a folder by ``plan.message_key``."""
    view = store.messages.open_view(folder_id, claim_recent=False)
    keys: Counter = Counter()
    for batch in store.messages.iter_fetch(folder_id, view.uids, fields=frozenset({"envelope"})):
        for info in batch:
            mid = (info.envelope or {}).get("message_id")
            keys[message_key(mid, info.size, info.internaldate)] += 1
    return keys


def scan_folder(client: IMAPClient, name: str) -> list[SourceMessage]:
    selected = client.select_folder(name, readonly=True)
    if not selected.get(b"EXISTS"):
        return []
    uids = sorted(client.search(["ALL"]))
    found = {}
    for i in range(0, len(uids), 1000):  # bounded responses on a folder of 100,000
        found.update(client.fetch(uids[i:i + 1000], _SCAN))
    out = []
    for uid, data in sorted(found.items()):
        when = data.get(b"INTERNALDATE")
        if when is None or b"RFC822.SIZE" not in data:
            continue  # expunged while we looked
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        out.append(SourceMessage(uid, data[b"RFC822.SIZE"], message_id_from_header(data.get(_HEAD, b"")), when,
                                 frozenset(_text(f) for f in data.get(b"FLAGS", ()))))
    return out


class _Pacer:
    """At most ``rate`` messages a second (spares an old server still in use)."""

    def __init__(self, rate: float | None) -> None:
        self.rate, self.began, self.count = rate, time.monotonic(), 0

    def tick(self) -> None:
        self.count += 1
        if self.rate:
            ahead = self.began + self.count / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def migrate_account(
    store: Store, quota: Quota, server: SourceServer, account: SourceAccount, progress: Progress, *,
    max_size: int, max_rate: float | None = None,
) -> AccountResult:
    result = AccountResult(account.address)
    began = time.monotonic()
    try:
        _migrate(store, quota, server, account, progress, result, max_size, max_rate)
    except MigrationError as exc:
        result.error = str(exc)
    except (OSError, IMAPClientError) as exc:
        result.error = f"source connection: {type(exc).__name__}: {exc} (run again to resume)"
    except StoreError as exc:
        result.error = f"store: {exc.kind.value}: {exc.detail} (run again to resume)"
    except Exception as exc:  # noqa: BLE001 - one account's failure never stops the others
        result.error = f"internal error: {type(exc).__name__}: {exc} (run again to resume)"
    result.seconds = time.monotonic() - began
    progress.status("failed" if result.error else "done")
    return result


def _migrate(store, quota, server, account, progress, result, max_size, max_rate) -> None:
    ours_account = store.accounts.get_account(account.address)
    if ours_account is None:
        raise MigrationError(f"no account {account.address} here (create it first: account add / account import)")
    progress.status("connecting")
    client = connect(server, account)
    try:
        progress.status("listing folders")
        folders, prefix = source_folders(client)
        mappings = map_folders(folders, prefix)
        try:
            subscribed = {_text(n) for _f, _d, n in client.list_sub_folders()}
        except IMAPClientError:
            subscribed = set()
        ours = {f.name: f for f in store.folders.list_folders(ours_account.id)}
        plans: list[tuple[Mapping, Folder, list[SourceMessage]]] = []
        for mapping in mappings:
            if mapping.target is None:
                if mapping.reason:
                    result.problems.append(Problem(mapping.source, None, f"folder not copied: {mapping.reason}"))
                continue
            target = _ensure_folder(store, ours_account.id, mapping, ours)
            if mapping.source in subscribed and not target.subscribed:
                store.folders.set_subscribed(ours_account.id, target.name, True)
            progress.status(f"scanning {mapping.source}")
            source = scan_folder(client, mapping.source)
            todo = missing(source, present_keys(store, target.id))
            result.folders += 1
            result.source_messages += len(source)
            result.present += len(source) - len(todo)
            plans.append((mapping, target, todo))
        progress.start(sum(len(t) for _m, _f, t in plans), sum(m.size for _m, _f, t in plans for m in t))
        pacer = _Pacer(max_rate)
        for mapping, target, todo in plans:
            if todo:
                progress.status(mapping.source)
                _copy_folder(store, quota, server, client, ours_account.address, mapping.source, target, todo,
                             progress, result, max_size, pacer)
    finally:
        _close(client)


def _batches(todo: list[SourceMessage], count: int, size: int):
    batch, total = [], 0
    for msg in todo:
        if batch and (len(batch) >= count or total + msg.size > size):
            yield batch
            batch, total = [], 0
        batch.append(msg)
        total += msg.size
    if batch:
        yield batch


def _copy_folder(store, quota, server, client, address, name, target, todo, progress, result, max_size, pacer) -> None:
    client.select_folder(name, readonly=True)
    fitting = []
    for msg in todo:
        if msg.size > max_size:
            result.problems.append(Problem(name, msg.uid, f"too big: {msg.size} bytes (limits.max_message_size is {max_size})"))
            progress.advance(1, msg.size)
        else:
            fitting.append(msg)
    for batch in _batches(fitting, server.batch_messages, server.batch_bytes):
        bodies = client.fetch([m.uid for m in batch], ["BODY.PEEK[]"])
        ready: list[tuple[SourceMessage, NewMessage]] = []
        for msg in batch:
            data = bodies.get(msg.uid, {}).get(b"BODY[]")
            if data is None:
                result.problems.append(Problem(name, msg.uid, "the source did not serve the message (expunged meanwhile?)"))
                progress.advance(1, msg.size)
                continue
            if len(data) != msg.size:
                result.problems.append(Problem(name, msg.uid, f"the source served {len(data)} bytes for a message of "
                                                              f"{msg.size} (RFC822.SIZE): not copied"))
                progress.advance(1, msg.size)
                continue
            flags, dropped = our_flags(msg.flags)
            if dropped:
                result.problems.append(Problem(name, msg.uid, f"flags not kept: {' '.join(dropped)}"))
            try:
                blob = store.messages.put_blob(data)
            except StoreError as exc:
                result.problems.append(Problem(name, msg.uid, f"refused: {exc.detail or exc.kind.value}"))
                progress.advance(1, msg.size)
                continue
            ready.append((msg, NewMessage(blob, flags, msg.internaldate)))
        _store(store, quota, address, name, target, ready, progress, result)
        for _ in ready:
            pacer.tick()


def _store(store, quota, address, name, target, ready, progress, result) -> None:
    if not ready:
        return
    limit = quota.delivery_limit(store.accounts.get_account(address))
    try:
        store.messages.append_many(target.id, [n for _m, n in ready], quota_limit=limit)
    except StoreError as exc:
        if len(ready) > 1:  # find the one(s) refused; the others go in one by one
            for one in ready:
                _store(store, quota, address, name, target, [one], progress, result)
            return
        msg = ready[0][0]
        reason = "over quota" if isinstance(exc, NoQuota) else f"refused by the store: {exc.detail or exc.kind.value}"
        result.problems.append(Problem(name, msg.uid, reason))
        progress.advance(1, msg.size)
        return
    result.copied += len(ready)
    size = sum(m.size for m, _n in ready)
    result.copied_bytes += size
    progress.advance(len(ready), size)

