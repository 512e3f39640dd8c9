"""Runs a script against one server and compares two transcripts."""

from __future__ import annotations

import difflib
import os

import pytest
from dataclasses import dataclass, field

from tests.imapdiff.client import RawClient, Timeout
from tests.imapdiff.normalise import CONDSTORE_WORDS, Normaliser, postprocess
from tests.imapdiff.script import Command, Script


@dataclass
class Transcript:
    entries: list[tuple[Command, list[str]]] = field(default_factory=list)
    normaliser: Normaliser = field(default_factory=Normaliser)


def run(script: Script, host: str, port: int, user: str, password: str) -> Transcript:
    t = Transcript()
    capture = Normaliser()  # only feeds ${HIGHESTMODSEQ} and ${MODSEQ} during the run
    sessions: dict[str, RawClient] = {}
    pending_idle: dict[str, bytes] = {}
    raw: list[tuple[Command, list[bytes]]] = []
    try:
        for cmd in script.commands:
            if cmd.session not in sessions:
                sessions[cmd.session] = RawClient(host, port)
            client = sessions[cmd.session]
            if client.closed:
                raw.append((cmd, [b"<connection closed>"]))
                continue
            try:
                if cmd.done:
                    tag = pending_idle.pop(cmd.session, b"")
                    client.send_raw(b"DONE\r\n")
                    got = client.read_until_tag(tag)
                else:
                    env = {"USER": user, "PASS": password,
                           "HIGHESTMODSEQ": capture.last_highestmodseq, "MODSEQ": capture.last_modseq}
                    got = client.command(cmd.tag, cmd.chunks(script.blobs, env), wait_continuation=cmd.idle)
                    if cmd.idle and got and got[-1].startswith(b"+"):
                        pending_idle[cmd.session] = cmd.tag
            except Timeout:
                raw.append((cmd, [b"<timeout>"]))
                break
            except (ConnectionError, OSError) as exc:
                raw.append((cmd, [b"<connection error %s>" % type(exc).__name__.encode()]))
                break
            raw.append((cmd, got))
            for r in got:
                capture.response(r)
    finally:
        for c in sessions.values():
            c.close()
    # Placeholders (<uvN>) are numbered by first appearance: the commands without annotation
    # first, so that a difference recorded in an annotation does not renumber the rest.
    norm = t.normaliser
    done: dict[int, list[str]] = {}
    for annotated in (False, True):
        for i, (cmd, got) in enumerate(raw):
            if (cmd.annotation is not None) == annotated:
                done[i] = [norm.response(r) for r in got]
    lines_flat = norm.finish([ln for i in range(len(raw)) for ln in done[i]])
    it = iter(lines_flat)
    condstore = False
    for i, (cmd, _) in enumerate(raw):
        condstore = condstore or bool(CONDSTORE_WORDS.search(cmd.text))
        t.entries.append((cmd, postprocess(cmd.text, [next(it) for _ in done[i]], condstore)))
    return t


class KnownBug(AssertionError):
    """Our server still shows the differences a script records as ``! bug``."""


def compare(script: Script, ours: Transcript, dove: Transcript) -> None:
    problems: list[str] = []
    bugs: list[str] = []
    record: list[tuple[int, list[str], list[str]]] = []
    left: list[str] = []
    right: list[str] = []
    o_map = {id(c): lines for c, lines in ours.entries}
    d_map = {id(c): lines for c, lines in dove.entries}
    for cmd in script.commands:
        o = o_map.get(id(cmd), ["<not run>"])
        d = d_map.get(id(cmd), ["<not run>"])
        head = f"C: {cmd.session} {cmd.text}    (line {cmd.lineno})"
        a = cmd.annotation
        if a is not None:
            where = f"{script.path.name}:{cmd.lineno} {cmd.text}"
            if not a.ours and not a.dove and os.environ.get("IMAPDIFF_RECORD"):
                record.append((a.lineno, o, d))  # filled in below, for the author to review
            elif a.kind == "bug" and o == d:
                pass  # fixed: the strict xfail turns into a failure, asking to remove the annotation
            elif o != a.ours or d != a.dove:
                problems.append(
                    f"{where}: annotated ({a.kind}) difference does not match exactly\n"
                    + "".join(f"  expected ours: {x}\n" for x in a.ours)
                    + "".join(f"  actual ours:   {x}\n" for x in o)
                    + "".join(f"  expected dove: {x}\n" for x in a.dove)
                    + "".join(f"  actual dove:   {x}\n" for x in d)
                )
            elif a.kind == "bug":
                bugs.append(f"{where}: {a.reason}")
            o = d = [f"<annotated {a.kind}>"]
        left += [head] + o
        right += [head] + d
    if record:
        _record(script, record)
    if left != right:
        diff = "\n".join(difflib.unified_diff(left, right, "ours", "dovecot", n=4, lineterm=""))
        problems.append(f"{script.path.name}: unannotated differences (- ours, + Dovecot):\n{diff}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
    if bugs:
        raise KnownBug("our server still differs from Dovecot where the script records a bug:\n" + "\n".join(bugs))


def _record(script: Script, record) -> None:
    """IMAPDIFF_RECORD=1: write the actual replies under annotations that have none yet."""
    lines = script.path.read_text(encoding="utf-8").split("\n")
    for lineno, o, d in sorted(record, reverse=True):
        lines[lineno:lineno] = [f"!ours {x}" for x in o] + [f"!dove {x}" for x in d]
    script.path.write_text("\n".join(lines), encoding="utf-8")


def render(t: Transcript) -> str:
    out = []
    for cmd, lines in t.entries:
        out.append(f"C: {cmd.session} {cmd.text}")
        out.extend("   " + ln for ln in lines)
    return "\n".join(out)
