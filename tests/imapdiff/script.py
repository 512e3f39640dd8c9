"""The corpus format: one IMAP command per line, sent with CRLF.

    # comment (a line starting with "#"; blank lines are ignored)
    =blob NAME [lf]      a message or other literal body, up to a line "=end"; its lines are
    ...                  joined with CRLF (or bare LF with "lf"), each line terminated (but the
    ...                  last with "noeol"); a line
    =end                 "@repeat N text" stands for N lines "text"
    @include FILE        the blobs defined in FILE (a file of =blob definitions in the corpus)
    @session B           later commands go to connection B (opened, greeting read, on first use;
                         the first connection is A)
    a1 APPEND INBOX (\\Seen) ~{NAME}      ~{NAME} sends blob NAME as a synchronizing literal
                                          (waits for "+"), ~{+NAME} as a LITERAL+ one
    a2 IDLE              waits for the continuation request; the next line "DONE" ends it
    DONE

In command and blob lines, <%HH> is the byte 0xHH (<%00> is NUL); $USER and $PASS are the
script's account; ${HIGHESTMODSEQ} is the last HIGHESTMODSEQ this server reported in the
session (also ${HIGHESTMODSEQ-1}), ${MODSEQ} the last FETCH MODSEQ.

Expected differences follow their command, and are matched exactly against the normalised
replies of both servers:

    ! ours-correct: RFC 3501 §6.4.4: why ours is right
    ! known-difference: why both are allowed / Dovecot deviates
    ! bug: RFC 3501 §x: what ours does wrong
    !ours a3 BAD
    !dove a3 OK

A ``bug`` annotation makes the script a strict expected failure (see test_imap_differential.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("ours-correct", "known-difference", "bug")
BYTE_ESCAPE = re.compile(r"<%([0-9A-Fa-f]{2})>")
LITERAL = re.compile(r"~\{(\+?)([A-Za-z0-9_.-]+)\}")
VARIABLE = re.compile(r"\$\{(HIGHESTMODSEQ|MODSEQ)([+-]\d+)?\}")


def unescape(text: str) -> bytes:
    out = b""
    pos = 0
    for m in BYTE_ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8") + bytes([int(m.group(1), 16)])
        pos = m.end()
    return out + text[pos:].encode("utf-8")


@dataclass
class Annotation:
    kind: str
    reason: str
    lineno: int = 0
    ours: list[str] = field(default_factory=list)
    dove: list[str] = field(default_factory=list)


@dataclass
class Command:
    lineno: int
    session: str
    text: str  # the script line, as shown in transcripts
    tag: bytes
    idle: bool = False
    done: bool = False
    annotation: Annotation | None = None

    def chunks(self, blobs: dict[str, bytes], env: dict[str, str]) -> list[bytes]:
        """The bytes to send; a chunk boundary after each synchronizing literal's CRLF."""
        text = self.text.replace("$USER", env["USER"]).replace("$PASS", env["PASS"])

        def var(m):
            value = int(env[m.group(1)])
            return str(value + int(m.group(2) or 0))

        text = VARIABLE.sub(var, text)
        chunks = [b""]
        pos = 0
        for m in LITERAL.finditer(text):
            data = blobs[m.group(2)]
            chunks[-1] += unescape(text[pos:m.start()])
            if m.group(1):
                chunks[-1] += b"{%d+}\r\n" % len(data) + data
            else:
                chunks[-1] += b"{%d}\r\n" % len(data)
                chunks.append(data)
            pos = m.end()
        chunks[-1] += unescape(text[pos:]) + b"\r\n"
        return chunks


@dataclass
class Script:
    name: str
    path: Path
    blobs: dict[str, bytes]
    commands: list[Command]

    @property
    def bugs(self) -> list[Annotation]:
        return [c.annotation for c in self.commands if c.annotation and c.annotation.kind == "bug"]


def parse(path: Path) -> Script:
    lines = path.read_text(encoding="utf-8").split("\n")
    blobs: dict[str, bytes] = {}
    commands: list[Command] = []
    session = "A"
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        lineno = i + 1
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("=blob "):
            parts = line.split()
            name, eol = parts[1], (b"\n" if "lf" in parts[2:] else b"\r\n")
            body = b""
            while lines[i].rstrip("\r") != "=end":
                bline = lines[i].rstrip("\r")
                if bline.startswith("@repeat "):
                    _, n, rest = bline.split(" ", 2)
                    body += (unescape(rest) + eol) * int(n)
                else:
                    body += unescape(bline) + eol
                i += 1
            i += 1
            if "noeol" in parts[2:] and body.endswith(eol):
                body = body[:-len(eol)]
            if name in blobs:
                raise ValueError(f"{path.name}:{lineno}: blob {name} defined twice")
            blobs[name] = body
            continue
        if line.startswith("@include "):
            included = parse(path.parent / line.split()[1])
            for name, body in included.blobs.items():
                if name in blobs:
                    raise ValueError(f"{path.name}:{lineno}: blob {name} defined twice")
                blobs[name] = body
            continue
        if line.startswith("@session "):
            session = line.split()[1]
            continue
        if line.startswith("!"):
            if not commands:
                raise ValueError(f"{path.name}:{lineno}: annotation before any command")
            cmd = commands[-1]
            if line.startswith("!ours ") or line.startswith("!dove "):
                if cmd.annotation is None:
                    raise ValueError(f"{path.name}:{lineno}: !ours/!dove without '! kind: reason'")
                (cmd.annotation.ours if line.startswith("!ours") else cmd.annotation.dove).append(line[6:])
                continue
            m = re.match(r"!\s+(" + "|".join(KINDS) + r"):\s*(.+)$", line)
            if not m or cmd.annotation is not None:
                raise ValueError(f"{path.name}:{lineno}: bad annotation {line!r}")
            cmd.annotation = Annotation(m.group(1), m.group(2).strip(), lineno=lineno)
            continue
        if line == "DONE":
            commands.append(Command(lineno, session, line, b"", done=True))
            continue
        tag, _, rest = line.partition(" ")
        idle = rest.strip().upper() in ("IDLE",)
        commands.append(Command(lineno, session, line, tag.encode(), idle=idle))
    return Script(path.stem, path, blobs, commands)
