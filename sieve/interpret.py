"""Run a compiled script against one message for one recipient (RFC 5228 section 2.10, and the
extensions of ``sieve.script.EXTENSIONS``). Pure: the result says what to do; delivery does it
in one placement (fileinto/keep) and sends what it must (redirect, reject, vacation).

Implicit keep: INBOX unless ``fileinto``, ``redirect`` (without ``:copy``), ``discard`` or
``reject`` cancelled it. A runtime error raises ``RuntimeScriptError``; delivery then keeps the
message in INBOX and tells the user (RFC 5228 2.10.6).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from sieve.match import matches
from sieve.message import Envelope, MessageView
from sieve.script import Node, Script

MAX_REDIRECTS = 5  # per message and script (RFC 5228 4.2: implementations limit them)
MAX_ACTIONS = 64


class RuntimeScriptError(Exception):
    pass


@dataclass(frozen=True)
class Vacation:
    reason: str
    subject: str | None = None
    from_: str | None = None
    addresses: tuple[str, ...] = ()
    seconds: int = 7 * 86400  # RFC 5230 4.1: default 7 days
    handle: str | None = None
    mime: bool = False


@dataclass
class Result:
    deliveries: list[tuple[str, frozenset[str]]] = field(default_factory=list)  # (folder, flags), in order
    redirects: list[str] = field(default_factory=list)
    reject: str | None = None
    vacation: Vacation | None = None
    discarded: bool = False


class _Stop(Exception):
    pass


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*|\d+)\}")
_NUMBER = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)


def _number(text: str) -> int:
    m = _NUMBER.match(text.strip())
    if not m:
        raise RuntimeScriptError(f"not a number: {text!r}")
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2).upper()]


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


class _Run:
    def __init__(self, script: Script, message: MessageView, envelope: Envelope, now: _dt.datetime) -> None:
        self.script, self.message, self.envelope, self.now = script, message, envelope, now
        self.variables = "variables" in script.requires
        self.vars: dict[str, str] = {}
        self.captures: list[str] = []
        self.flags: list[str] = []  # imap4flags internal variable
        self.result = Result()
        self.implicit_keep = True
        self.actions = 0

    # -- strings -------------------------------------------------------------------------
    def s(self, value: str) -> str:
        if not self.variables or "${" not in value:
            return value

        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name.isdigit():
                i = int(name)
                return self.captures[i] if i < len(self.captures) else ""
            return self.vars.get(name.lower(), "")

        return _VAR.sub(sub, value)

    def sl(self, value) -> list[str]:
        return [self.s(v) for v in _list(value)]

    def flag_list(self, value) -> list[str]:
        return [f for v in self.sl(value) for f in v.split()]

    # -- commands ------------------------------------------------------------------------
    def block(self, nodes: list[Node]) -> None:
        previous = None  # the value of the last if/elsif test, for elsif/else
        for node in nodes:
            if node.name == "if":
                previous = self.test(node.args["test"])
                if previous:
                    self.block(node.children)
            elif node.name in ("elsif", "else"):
                if previous is None:
                    raise RuntimeScriptError(f"{node.name} without if")
                if previous:
                    continue
                previous = self.test(node.args["test"]) if node.name == "elsif" else True
                if previous:
                    self.block(node.children)
                if node.name == "else":
                    previous = None
            else:
                previous = None
                self.command(node)

    def _count(self) -> None:
        self.actions += 1
        if self.actions > MAX_ACTIONS:
            raise RuntimeScriptError(f"more than {MAX_ACTIONS} actions")

    def _flags_of(self, node: Node) -> frozenset[str]:
        if "flags" in node.extra:
            return frozenset(self.flag_list(node.extra["flags"]))
        return frozenset(self.flags)

    def command(self, node: Node) -> None:
        name, r = node.name, self.result
        if name == "require":
            return
        if name == "stop":
            raise _Stop
        self._count()
        if name in ("keep", "fileinto"):
            folder = "INBOX" if name == "keep" else self.s(node.args["mailbox"])
            if not folder or "\x00" in folder:
                raise RuntimeScriptError("fileinto: bad folder name")
            r.deliveries.append((folder, self._flags_of(node)))
            if name == "keep" or "copy" not in node.args:
                self.implicit_keep = False
        elif name == "redirect":
            address = self.s(node.args["address"]).strip()
            if "@" not in address or any(c in address for c in "<>\r\n ,"):
                raise RuntimeScriptError(f"redirect: bad address {address!r}")
            if len(r.redirects) >= MAX_REDIRECTS:
                raise RuntimeScriptError(f"more than {MAX_REDIRECTS} redirects")
            r.redirects.append(address)
            if "copy" not in node.args:
                self.implicit_keep = False
        elif name == "discard":
            r.discarded, self.implicit_keep = True, False
        elif name == "reject":
            r.reject, self.implicit_keep = self.s(node.args["text"]), False
        elif name == "vacation":
            r.vacation = self._vacation(node)
        elif name in ("setflag", "addflag", "removeflag"):
            self._flag_action(node)
        elif name == "set":
            self._set(node)
        else:
            raise RuntimeScriptError(f"unsupported command {name}")

    def _vacation(self, node: Node) -> Vacation:
        e = node.extra
        if "seconds" in e:
            seconds = _number(e["seconds"])
        else:
            seconds = _number(e.get("days", "7")) * 86400
        return Vacation(
            reason=self.s(node.args["reason"]), subject=self.s(e["subject"]) if "subject" in e else None,
            from_=self.s(e["from"]) if "from" in e else None, addresses=tuple(self.sl(e.get("addresses", []))),
            seconds=max(seconds, 0), handle=self.s(e["handle"]) if "handle" in e else None, mime="mime" in node.args,
        )  # fmt: skip

    def _flag_action(self, node: Node) -> None:
        flags = self.flag_list(node.args["list-of-flags"])
        var = node.args.get("variable-name")
        current = self.vars.get(self.s(var).lower(), "").split() if var else self.flags
        if node.name == "setflag":
            new = list(dict.fromkeys(flags))
        elif node.name == "addflag":
            new = list(dict.fromkeys([*current, *flags]))
        else:
            drop = {f.lower() for f in flags}
            new = [f for f in current if f.lower() not in drop]
        if var:
            self.vars[self.s(var).lower()] = " ".join(new)
        else:
            self.flags = new

    def _set(self, node: Node) -> None:
        value = self.s(node.args["value"])
        for mod in (":lower", ":upper", ":lowerfirst", ":upperfirst", ":quotewildcard", ":length"):
            key = {":lower": "case", ":upper": "case", ":lowerfirst": "first-case", ":upperfirst": "first-case",
                   ":quotewildcard": "encoding", ":length": "length"}[mod]  # fmt: skip
            if node.args.get(key) != mod:
                continue
            if mod == ":lower":
                value = value.lower()
            elif mod == ":upper":
                value = value.upper()
            elif mod == ":lowerfirst":
                value = value[:1].lower() + value[1:]
            elif mod == ":upperfirst":
                value = value[:1].upper() + value[1:]
            elif mod == ":quotewildcard":
                value = re.sub(r"([*?\\])", r"\\\1", value)
            elif mod == ":length":
                value = str(len(value))
        self.vars[self.s(node.args["name"]).lower()] = value

    # -- tests ---------------------------------------------------------------------------
    def _match(self, node: Node, values: list[str], keys) -> bool:
        how = node.args.get("match-type", ":is")
        relation = node.extra.get("match-type") if how in (":count", ":value") else None
        comparator = node.extra.get("comparator", "i;ascii-casemap")
        hit, captures = matches(values, self.sl(keys), how, relation, comparator)
        if hit and captures is not None:
            self.captures = captures
        return hit

    @staticmethod
    def _part(address: str, node: Node) -> str:
        part = node.args.get("address-part", ":all")
        local, _, domain = address.rpartition("@") if "@" in address else (address, "", "")
        return {":localpart": local, ":domain": domain}.get(part, address)

    def test(self, node: Node) -> bool:
        name, m = node.name, self.message
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not self.test(node.args["test"])
        if name == "allof":
            return all(self.test(t) for t in node.args["tests"])
        if name == "anyof":
            return any(self.test(t) for t in node.args["tests"])
        if name == "exists":
            return all(m.raw_header(h) for h in self.sl(node.args["header-names"]))
        if name == "size":
            limit = _number(node.args["limit"])
            return m.size > limit if node.args.get("comparator") == ":over" else m.size < limit
        if name == "header":
            return self._match(node, [v for h in self.sl(node.args["header-names"]) for v in m.header(h)], node.args["key-list"])
        if name == "address":
            values = [self._part(a, node) for h in self.sl(node.args["header-list"]) for a in m.addresses(h)]
            return self._match(node, values, node.args["key-list"])
        if name == "envelope":
            parts = {"from": self.envelope.sender, "to": self.envelope.recipient}
            fields = [f.lower() for f in self.sl(node.args["header-list"])]
            values = [self._part(parts[f], node) for f in fields if f in parts and (parts[f] or f == "from")]
            if "from" in fields and not self.envelope.sender:
                values = [v for v in values if v] + ([""] if node.args.get("address-part", ":all") == ":all" else [])
            return self._match(node, values, node.args["key-list"])
        if name == "body":
            transform = node.args.get("body-transform", ":text")
            types = self.sl(node.extra["body-transform"]) if transform == ":content" else None
            return self._match(node, m.body(transform, types), node.args["key-list"])
        if name in ("date", "currentdate"):
            return self._match(node, self._dates(node), node.args["key-list"])
        if name == "hasflag":
            var = node.args.get("variable-list")
            have = [f for v in self.sl(var) for f in self.vars.get(v.lower(), "").split()] if var else self.flags
            return self._match(node, have, node.args["list-of-flags"])
        raise RuntimeScriptError(f"unsupported test {name}")

    def _dates(self, node: Node) -> list[str]:
        part = self.s(node.args["date-part"]).lower()
        zone_tag = node.args.get("zone")
        if node.name == "currentdate":
            stamps = [self.now]
        else:
            stamps = []
            for value in self.message.header(self.s(node.args["header-name"])):
                try:
                    stamps.append(parsedate_to_datetime(value))
                except (TypeError, ValueError, IndexError):
                    continue  # RFC 5260 4.2: an unparsable date does not match
        out = []
        for when in stamps:
            if when.tzinfo is None:
                when = when.replace(tzinfo=_dt.timezone.utc)
            if zone_tag == ":zone":
                when = when.astimezone(_zone(self.s(node.extra["zone"])))
            elif zone_tag != ":originalzone":
                when = when.astimezone(self.now.tzinfo)
            out.append(date_part(when, part))
        return out

    def run(self) -> Result:
        try:
            self.block(self.script.commands)
        except _Stop:
            pass
        except (KeyError, IndexError, TypeError) as e:  # an argument the parser let through
            raise RuntimeScriptError(f"malformed command: {e}") from None
        if self.implicit_keep:
            self.result.deliveries.append(("INBOX", frozenset(self.flags)))
        seen: dict[str, frozenset[str]] = {}
        for folder, flags in self.result.deliveries:  # one copy per folder (RFC 5228 4.1)
            seen[folder] = seen.get(folder, frozenset()) | flags
        self.result.deliveries = list(seen.items())
        if self.result.reject is not None and self.result.deliveries:  # RFC 5429 2.1
            raise RuntimeScriptError("reject cannot be combined with keep or fileinto")
        return self.result


def _zone(text: str) -> _dt.tzinfo:
    m = re.fullmatch(r"([+-])(\d\d)(\d\d)", text.strip())
    if not m:
        raise RuntimeScriptError(f"bad zone {text!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return _dt.timezone(_dt.timedelta(minutes=minutes if m.group(1) == "+" else -minutes))


def date_part(when: _dt.datetime, part: str) -> str:
    """RFC 5260 4.1 date-parts."""
    offset = when.utcoffset() or _dt.timedelta(0)
    sign = "-" if offset < _dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    zone = f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    parts = {
        "year": f"{when.year:04d}", "month": f"{when.month:02d}", "day": f"{when.day:02d}",
        "date": when.strftime("%Y-%m-%d"), "hour": f"{when.hour:02d}", "minute": f"{when.minute:02d}",
        "second": f"{when.second:02d}", "time": when.strftime("%H:%M:%S"), "zone": zone,
        "julian": str((when.date() - _dt.date(1858, 11, 17)).days), "weekday": str((when.weekday() + 1) % 7),
        "iso8601": when.isoformat(), "std11": when.strftime("%a, %d %b %Y %H:%M:%S ") + zone,
    }  # fmt: skip
    if part not in parts:
        raise RuntimeScriptError(f"unknown date-part {part!r}")
    return parts[part]


def evaluate(script: Script, message: MessageView, envelope: Envelope, now: _dt.datetime) -> Result:
    """What ``script`` decides for ``message`` delivered to ``envelope.recipient``; ``now`` is
    aware (its zone is the default zone of ``date``/``currentdate``)."""
    return _Run(script, message, envelope, now).run()
