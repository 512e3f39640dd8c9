"""The server's log as ``logging:`` says (config/logs.py): level, text or JSON, stderr or a file
reopened on SIGHUP (logrotate's ``postrotate kill -HUP``; mailserver/app.py wires the signal).

JSON: one object per line, fields with stable names, so that a log shipper needs no pattern:
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``event``, ``message``, and when the line has
them ``protocol``, ``client``, ``account``, ``message_id``, ``queue_id``, ``result``, ``reason``.
They are read from the ``key=value`` fields our log lines already carry (``login protocol=imap
client=… result=fail … user="…"``, ``id=<transaction> …``, ``queue=<id> …``); ``event`` is the
line's first word when fields follow it (``login``, ``limit``), else the logger's last name.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import sys
import threading

from config.logs import Logging

_FIELD = re.compile(r'(?:^|\s)(protocol|client|result|reason|user|id|queue)=("(?:[^"\\]|\\.)*"|\S+)')
_EVENT = re.compile(r"^([a-z][a-z_-]*) [a-z_]+=")
_NAMES = {"user": "account", "id": "message_id", "queue": "queue_id"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, object] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        event = _EVENT.match(message)
        out["event"] = event.group(1) if event else record.name.rsplit(".", 1)[-1]
        for key, value in _FIELD.findall(message):
            if value.startswith('"'):
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            out.setdefault(_NAMES.get(key, key), value)
        out["message"] = message
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class ReopeningFileHandler(logging.StreamHandler):
    """Appends to a file; ``reopen()`` (on SIGHUP) closes it and opens the path again, so that a
    rotated file is let go of. Lines are never lost or split: the lock is held across the swap."""

    def __init__(self, path) -> None:
        self.path = path
        super().__init__(open(path, "a", encoding="utf-8"))

    def reopen(self) -> None:
        with self.lock or threading.RLock():
            old = self.stream
            self.stream = open(self.path, "a", encoding="utf-8")
            old.close()

    def close(self) -> None:
        with self.lock or threading.RLock():
            if self.stream and not self.stream.closed:
                self.stream.close()
        super().close()


def configure(settings: Logging) -> None:
    """Replace the root logger's handlers by the one ``settings`` describes."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    handler = ReopeningFileHandler(settings.file) if settings.file is not None else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.level)
    # The formats name no source line, thread or process: skip looking them up for every record
    # (the logging HOWTO, "Optimization"); the stack walk alone was ~2 % of ingest CPU.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def reopen() -> None:
    """SIGHUP: files of the log handlers reopened (logrotate moved the old one away)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ReopeningFileHandler):
            handler.reopen()
