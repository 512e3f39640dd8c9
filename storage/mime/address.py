"""RFC 5322 address lists → IMAP ENVELOPE address structures (RFC 3501 §7.4.2).

Twisted gets groups and addresses without ``@`` wrong (docs/libraries.md, Twisted IMAP4); this parser keeps
group start/end markers, quoted local parts and display names exactly as sent (encoded-words
stay encoded: ENVELOPE carries them raw). It never raises.
"""

from __future__ import annotations

import re

from storage.mime.headers import comment_end

_SPECIALS = "<>@,;:"
# One mailbox in the forms nearly all mail carries: ``local@host``, ``<local@host>`` and
# ``Plain Words <local@host>``. No quotes, comments, groups or domain literals: those take the
# tokenizer. Matches give exactly what the tokenizer gives (tests/test_mime.py checks it).
_WORD = r'[^ \t\r\n<>@,;:"()\[\]\\]+'
_BARE = re.compile(rf"[ \t]*({_WORD})@({_WORD})[ \t]*")
_ANGLE = re.compile(rf"[ \t]*((?:{_WORD}[ \t]+)*{_WORD})?[ \t]*<({_WORD})@({_WORD})>[ \t]*")


def _tokens(text: str) -> list[tuple[str, str]]:
    """("q" quoted, "c" comment, "d" domain literal, "s" special, "a" atom, " " space) tokens."""
    tokens: list[tuple[str, str]] = []
    pos, size = 0, len(text)
    while pos < size:
        ch = text[pos]
        if ch in " \t\r\n":
            while pos < size and text[pos] in " \t\r\n":
                pos += 1
            tokens.append((" ", " "))
        elif ch == '"':
            out: list[str] = []
            pos += 1
            while pos < size and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < size:
                    pos += 1
                out.append(text[pos])
                pos += 1
            tokens.append(("q", "".join(out)))
            pos += 1
        elif ch == "(":
            start, pos = pos, comment_end(text, pos)
            tokens.append(("c", text[start + 1:pos].strip()))
            pos += 1
        elif ch == "[":
            end = text.find("]", pos)
            end = size - 1 if end < 0 else end
            tokens.append(("d", text[pos:end + 1]))
            pos = end + 1
        elif ch in _SPECIALS:
            tokens.append(("s", ch))
            pos += 1
        else:
            start = pos
            while pos < size and text[pos] not in _SPECIALS and text[pos] not in ' \t\r\n"([':
                pos += 1
            tokens.append(("a", text[start:pos]))
    return tokens


def _addr(name: str | None, mailbox: str | None, host: str | None, adl: str | None = None) -> dict:
    return {"name": name or None, "adl": adl or None, "mailbox": mailbox, "host": host or None}


def _phrase(tokens: list[tuple[str, str]]) -> str:
    words = [value for kind, value in tokens if kind in "qad" or (kind == "s" and value in "@.")]
    text = "".join(value if kind != " " else " " for kind, value in tokens if kind != "c")
    return " ".join(text.split()) if words else ""


def _addr_spec(tokens: list[tuple[str, str]]) -> tuple[str | None, str | None, str | None]:
    """(mailbox, host, route) of ``[@route,...:]local@domain`` tokens; an address without ``@``
    has no host. The obsolete source route (RFC 5322 §4.4 obs-route) is ENVELOPE's adl field,
    "@route1.example,@route2.example" (RFC 3501 §7.4.2)."""
    body = [(kind, value) for kind, value in tokens if kind not in " c"]
    route = None
    if body and body[0] == ("s", "@") and ("s", ":") in body:
        colon = body.index(("s", ":"))
        route = "".join(value for _, value in body[:colon]) or None
        body = body[colon + 1:]
    at = max((i for i, token in enumerate(body) if token == ("s", "@")), default=-1)
    if at < 0:
        local = "".join(value for _, value in body)
        return (local or None), None, route
    local = "".join(value for _, value in body[:at])
    host = "".join(value for _, value in body[at + 1:])
    return local, host or None, route


def _mailbox(tokens: list[tuple[str, str]]) -> dict | None:
    """One mailbox from its tokens: ``phrase <addr-spec>`` or ``addr-spec (comment)``."""
    if ("s", "<") in tokens:
        start = tokens.index(("s", "<"))
        end = tokens.index(("s", ">")) if ("s", ">") in tokens[start:] else len(tokens)
        name = _phrase(tokens[:start])
        mailbox, host, route = _addr_spec(tokens[start + 1:end])
        if mailbox is None and host is None:
            return _addr(name, "", None) if name else None
        return _addr(name, mailbox or "", host, route)
    if not any(kind != " " for kind, _ in tokens):
        return None
    comments = [value for kind, value in tokens if kind == "c" and value]
    words = [token for token in tokens if token[0] in "qad" or token[0] == "s"]
    if ("s", "@") not in words and sum(1 for kind, _ in tokens if kind == " ") and len(words) > 1:
        return _addr(None, _phrase(tokens), None)  # "Nguyen Van A" with no address at all
    mailbox, host, route = _addr_spec(tokens)
    if mailbox is None and host is None:
        return None
    return _addr(comments[-1] if comments else None, mailbox or "", host, route)


def parse_addresses(text: str | None) -> list[dict]:
    """ENVELOPE address list of a header value (raw str), groups as start/end markers."""
    if not text:
        return []
    simple = _BARE.fullmatch(text)
    if simple is not None:
        return [_addr(None, simple[1], simple[2])]
    simple = _ANGLE.fullmatch(text)
    if simple is not None:
        return [_addr(" ".join(simple[1].split()) if simple[1] else None, simple[2], simple[3])]
    return _parse_addresses(text)


def _parse_addresses(text: str) -> list[dict]:
    """The general case: a token stream with groups, quotes, comments and routes."""
    result: list[dict] = []
    current: list[tuple[str, str]] = []
    in_group = in_angle = False
    for token in _tokens(text):
        kind, value = token
        if kind == "s" and value == "<":
            in_angle = True
        elif kind == "s" and value == ">":
            in_angle = False
        if kind == "s" and not in_angle and value == ":" and not in_group and ("s", "<") not in current:
            result.append(_addr(None, _phrase(current) or "", None) | {"name": None})
            in_group, current = True, []
            continue
        if kind == "s" and not in_angle and value in ",;":
            address = _mailbox(current)
            if address:
                result.append(address)
            current = []
            if value == ";" and in_group:
                result.append(_addr(None, None, None))
                in_group = False
            continue
        current.append(token)
    address = _mailbox(current)
    if address:
        result.append(address)
    if in_group:
        result.append(_addr(None, None, None))
    return result


def format_addresses(addresses: list[dict], decode) -> str:
    """Readable "Name <mailbox@host>, ..." for search, names run through ``decode``."""
    parts: list[str] = []
    group: list[str] | None = None
    group_name = ""
    ends = [i for i, a in enumerate(addresses) if a["mailbox"] is None and a["host"] is None]
    for index, address in enumerate(addresses):
        mailbox, host, name = address["mailbox"], address["host"], address["name"]
        if index in ends:
            if group is not None:
                parts.append(f"{group_name}: {', '.join(group)};")
            group = None
            continue
        if host is None and name is None and group is None and any(end > index for end in ends):
            group, group_name = [], decode(mailbox or "")
            continue
        spec = f"{mailbox}@{host}" if host else (mailbox or "")
        text = f"{decode(name)} <{spec}>" if name else spec
        (group if group is not None else parts).append(text)
    if group is not None:
        parts.append(f"{group_name}: {', '.join(group)};")
    return ", ".join(parts)
