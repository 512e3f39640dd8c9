"""The base of the role implementations: each role object holds the shared core and reads
the core's engines, writer and row helpers under the names its methods use (listed here, so
what a role may reach of the core is in one place)."""

from __future__ import annotations

from storage.sql.core import StoreCore

#: What of the core the roles use.
CORE_NAMES = (
    "url",
    "_read",
    "_writer",
    "_sqlite",
    "_blobs",
    "_recipients",
    "_closing",
    "_fold_diacritics",
    "_index_quiet_s",
    "_placer",
    "fold",
    "parse_message",
    "reading",
    "_reading",
    "run_write",
    "is_sqlite",
    "_raw_read",
    "_when",
    "_ensure_blob",
    "_bump",
    "_place",
    "_folder",
    "_insert_folder",
    "_subscribe_defaults",
    "_get_folder",
    "_folder_by_id",
    "_remove_messages",
    "_charge",
    "_account",
    "_normalise_address",
    "_cached_account",
)


class Role:
    def __init__(self, core: StoreCore) -> None:
        self.core = core


def _forward(name: str) -> property:
    return property(lambda self: getattr(self.core, name), doc=f"``StoreCore.{name}``")


for _name in CORE_NAMES:
    setattr(Role, _name, _forward(_name))
