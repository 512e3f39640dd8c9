"""Edits of a header section asked for by milters (add, insert, change, delete), pure.

A header section is split into its fields (each with its folded continuation lines and CRLF);
``apply`` returns the new section with its blank line. Indexes follow the milter protocol:
``insert`` at position N among the fields (0 = top), ``change`` the N-th (1-based) field of that
name, an empty value deleting it; a change of a field that is not there adds it (as Sendmail does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Edit:
    kind: str  # add | insert | change
    name: str
    value: str
    index: int = 0


def split_fields(head: bytes) -> list[bytes]:
    """The fields of ``head`` (a header section, with or without its blank line)."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields


def field_name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def field_value(field: bytes) -> str:
    """The value as a milter sees it: without the leading space and the final CRLF."""
    value = field.split(b":", 1)[1] if b":" in field else b""
    return value.lstrip(b" \t").removesuffix(b"\r\n").decode("utf-8", "surrogateescape")


def render(name: str, value: str) -> bytes:
    lines = value.replace("\r\n", "\n").split("\n")  # every continuation line starts with white space
    value = "\r\n".join([lines[0]] + [x if x[:1] in (" ", "\t") else "\t" + x for x in lines[1:]])
    sep = ":" if value[:1] in (" ", "\t") else ": "
    return f"{name}{sep}{value}\r\n".encode("utf-8", "surrogateescape")


def without(fields: list[bytes], prefix: str) -> list[bytes] | None:
    """The fields whose name does not start with ``prefix`` (any case), or None when none does:
    forged ``X-Spam-*`` fields from outside go before ours are added (a client's rules trust them)."""
    prefix = prefix.lower()
    kept = [f for f in fields if not field_name(f).startswith(prefix)]
    return kept if len(kept) != len(fields) else None


def apply(fields: list[bytes], edits: list[Edit]) -> bytes:
    out = list(fields)
    for e in edits:
        if e.kind == "add":
            out.append(render(e.name, e.value))
        elif e.kind == "insert":
            out.insert(max(0, min(e.index, len(out))), render(e.name, e.value))
        elif e.kind == "change":
            seen = 0
            for i, f in enumerate(out):
                if field_name(f) == e.name.lower():
                    seen += 1
                    if seen == max(e.index, 1):
                        if e.value.strip():
                            out[i] = render(e.name, e.value)
                        else:
                            del out[i]
                        break
            else:
                if e.value.strip():
                    out.append(render(e.name, e.value))
    return b"".join(out) + b"\r\n"
