"""The folders role (storage.api.Folders): an account's folders and their status."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, delete, func, insert, select, update

from storage import api, models as m
from storage.errors import Exists, Invalid, NoPerm, NotFound
from storage.sql.role import Role
from storage.sqlrows import SEEN, _canonical


class SqlFolders(Role):
    """See storage.api.Folders."""

    def list_folders(self, account_id: int) -> list[api.Folder]:
        with self._reading() as conn:
            rows = conn.execute(select(m.Folder).where(m.Folder.account_id == account_id).order_by(m.Folder.name))
            subscribed = set(self._subscriptions(conn, account_id))
            folders = [dataclasses.replace(self._folder(r), subscribed=r.name in subscribed) for r in rows]
        folders.sort(key=lambda f: (f.name != "INBOX", f.name))
        return folders

    def get_folder(self, account_id: int, name: str) -> api.Folder:
        with self._reading() as conn:
            return self._get_folder(conn, account_id, name)

    @staticmethod
    def _check_name(name: str) -> str:
        if not name or name.startswith("/") or name.endswith("/") or "//" in name:
            raise Invalid(f"invalid folder name {name!r}")
        if any(ord(c) < 32 or c in "*%" for c in name):
            raise Invalid(f"invalid folder name {name!r}")
        return _canonical(name)

    def create_folder(self, account_id: int, name: str, *, special_use: str | None = None) -> api.Folder:
        name = self._check_name(name)

        def job(conn: Connection, changes: list) -> int:
            if conn.scalar(select(m.Folder.id).where(m.Folder.account_id == account_id, m.Folder.name == name)) is not None:
                raise Exists(f"folder {name!r} exists")
            if conn.scalar(select(m.Account.id).where(m.Account.id == account_id)) is None:
                raise NotFound(f"account {account_id}")
            changes.append(api.FolderChange(account_id, api.FOLDER_LIST, 0))
            return self._insert_folder(conn, account_id, name, special_use)

        folder_id = self._writer.run(job)
        with self._reading() as conn:
            return self._folder_by_id(conn, folder_id)

    def delete_folder(self, account_id: int, name: str) -> None:
        name = _canonical(name)
        if name == "INBOX":
            raise NoPerm("INBOX cannot be deleted")

        def job(conn: Connection, changes: list) -> None:
            folder = self._get_folder(conn, account_id, name)
            rows = conn.execute(select(m.Message.uid, m.Message.size).where(m.Message.folder_id == folder.id)).all()
            if rows:
                self._charge(conn, account_id, -sum(r.size for r in rows), -len(rows))
            conn.execute(delete(m.Message).where(m.Message.folder_id == folder.id))
            conn.execute(delete(m.Expunged).where(m.Expunged.folder_id == folder.id))
            conn.execute(delete(m.Folder).where(m.Folder.id == folder.id))
            changes.append(api.FolderChange(account_id, folder.id, folder.highestmodseq + 1))
            changes.append(api.FolderChange(account_id, api.FOLDER_LIST, 0))

        self._writer.run(job)

    def rename_folder(self, account_id: int, old: str, new: str) -> None:
        old, new = _canonical(old), self._check_name(new)
        if new == "INBOX":
            raise Exists("INBOX exists")

        def job(conn: Connection, changes: list) -> None:
            folder = self._get_folder(conn, account_id, old)
            if conn.scalar(select(m.Folder.id).where(m.Folder.account_id == account_id, m.Folder.name == new)) is not None:
                raise Exists(f"folder {new!r} exists")
            changes.append(api.FolderChange(account_id, api.FOLDER_LIST, 0))
            if old == "INBOX":
                self._move_inbox(conn, folder, new, changes)
                return
            children = conn.execute(
                select(m.Folder.id, m.Folder.name).where(m.Folder.account_id == account_id, m.Folder.name.startswith(old + "/"))
            ).all()
            conn.execute(update(m.Folder).where(m.Folder.id == folder.id).values(name=new))
            for child in children:
                conn.execute(update(m.Folder).where(m.Folder.id == child.id).values(name=new + child.name[len(old) :]))

        self._writer.run(job)

    def _move_inbox(self, conn: Connection, inbox: api.Folder, new: str, changes: list) -> None:
        """RFC 3501 6.3.5: renaming INBOX moves its messages to the new name; INBOX stays, empty."""
        new_id = self._insert_folder(conn, inbox.account_id, new, None)
        modseq = inbox.highestmodseq + 1
        rows = conn.execute(select(m.Message.uid).where(m.Message.folder_id == inbox.id)).all()
        conn.execute(update(m.Message).where(m.Message.folder_id == inbox.id).values(folder_id=new_id, modseq=1))
        conn.execute(update(m.Folder).where(m.Folder.id == new_id).values(uidnext=inbox.uidnext))
        if rows:
            conn.execute(insert(m.Expunged), [{"folder_id": inbox.id, "uid": r.uid, "modseq": modseq} for r in rows])
        conn.execute(update(m.Folder).where(m.Folder.id == inbox.id).values(highestmodseq=modseq))
        changes.append(api.FolderChange(inbox.account_id, inbox.id, modseq))

    @staticmethod
    def _subscriptions(conn: Connection, account_id: int) -> list[str]:
        t = m.subscriptions
        return list(conn.scalars(select(t.c.name).where(t.c.account_id == account_id).order_by(t.c.name)))

    def subscriptions(self, account_id: int) -> list[str]:
        with self._reading() as conn:
            return self._subscriptions(conn, account_id)

    def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscriptions are a list of names (RFC 3501 §6.3.6-6.3.7): SUBSCRIBE needs the folder
        to exist; UNSUBSCRIBE takes a subscribed name whose folder is gone, too."""
        name = _canonical(name)
        t = m.subscriptions
        where = (t.c.account_id == account_id, t.c.name == name)

        def job(conn: Connection, changes: list) -> None:
            listed = conn.scalar(select(t.c.name).where(*where)) is not None
            if not listed or subscribed:
                self._get_folder(conn, account_id, name)  # NotFound for a name that is neither
            if subscribed and not listed:
                conn.execute(insert(t).values(account_id=account_id, name=name))
                changes.append(api.FolderChange(account_id, api.FOLDER_LIST, 0))
            elif not subscribed and listed:
                conn.execute(delete(t).where(*where))
                changes.append(api.FolderChange(account_id, api.FOLDER_LIST, 0))

        self._writer.run(job)

    def folder_status(self, folder_id: int) -> api.FolderStatus:
        with self._reading() as conn:
            folder_row = conn.execute(select(m.Folder).where(m.Folder.id == folder_id)).first()
            if folder_row is None:
                raise NotFound(f"folder {folder_id}")
            where = m.Message.folder_id == folder_id
            count, size = conn.execute(select(func.count(), func.coalesce(func.sum(m.Message.size), 0)).where(where)).one()
            recent = conn.scalar(select(func.count()).where(where, m.Message.uid >= folder_row.recent_floor))
            unseen_where = (where, m.Message.flags.op("&")(SEEN) == 0)
            unseen = conn.scalar(select(func.count()).where(*unseen_where))
            first_unseen = conn.scalar(select(func.min(m.Message.uid)).where(*unseen_where))
        return api.FolderStatus(self._folder(folder_row), count, recent, unseen, int(size), first_unseen)
