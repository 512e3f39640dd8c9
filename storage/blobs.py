"""Content-addressed blob store (SHA-256): one stored body, many message rows.

Small bodies are committed in the database with their rows (one fsync for row and body).
Large ones (SQLite only) become files ``blobs/ab/cd/<sha256>`` written to a temporary name,
fsynced, renamed and the directory fsynced *before* the rows that point at them commit, so an
acknowledged message never points at a missing file and a crash leaves at most an orphan file.
On PostgreSQL every body is in the database so several hosts can serve one store.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobFiles:
    def __init__(self, root: Path, *, inline_limit: int | None) -> None:
        """``inline_limit=None`` keeps every body inline (PostgreSQL)."""
        self.root = root
        self.inline_limit = inline_limit

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def write(self, source: bytes | BinaryIO, prefix: bytes) -> tuple[str, int, bytes | None, Path | None]:
        """Returns (sha256, size, inline bytes or None, file path or None)."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = prefix + bytes(source)
            return self._from_bytes(data)
        if self.inline_limit is None:
            return self._from_bytes(prefix + source.read())
        head = source.read(self.inline_limit + 1)
        if len(prefix) + len(head) <= self.inline_limit:
            return self._from_bytes(prefix + head)
        return self._spool(source, prefix + head)

    def _from_bytes(self, data: bytes) -> tuple[str, int, bytes | None, Path | None]:
        sha = hashlib.sha256(data).hexdigest()
        if self.inline_limit is None or len(data) <= self.inline_limit:
            return sha, len(data), data, None
        return self._spool(io.BytesIO(data), b"")

    def _spool(self, rest: BinaryIO, first: bytes) -> tuple[str, int, None, Path]:
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                chunk = first or rest.read(CHUNK)
                while chunk:
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    chunk = rest.read(CHUNK)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path_for(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, final)
            _fsync_dir(final.parent)
            return sha, size, None, final
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path_for(sha256), "rb")
