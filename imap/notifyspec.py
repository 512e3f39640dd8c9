"""NOTIFY's arguments (RFC 5465 §6, §8): parsed once into a ``NotifySpec``, and the pure rules
that say which events a mailbox gets. The session side (who is told what, when) is in
imap/op/notify.py.

Mailbox filters cover the user's own folders: INBOXES (INBOX, where mail is delivered),
PERSONAL, SUBSCRIBED, SUBTREE and MAILBOXES; SELECTED and SELECTED-DELAYED the selected
mailbox. When a folder matches several event groups, the first one applies (so that a later
``(PERSONAL (…))`` does not widen an earlier ``(MAILBOXES Junk NONE)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from imap.args import decode_mailbox, normalize_mailbox
from imap.fetchparse import FetchItem, parse_fetch_atts
from imap.wire import Atom, ParseError, String

MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE = "messagenew", "messageexpunge", "flagchange"
MAILBOX_NAME, SUBSCRIPTION_CHANGE = "mailboxname", "subscriptionchange"
MESSAGE_EVENTS = frozenset({MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE})
MAILBOX_EVENTS = frozenset({MAILBOX_NAME, SUBSCRIPTION_CHANGE})
SUPPORTED = MESSAGE_EVENTS | MAILBOX_EVENTS
#: Events of RFC 5465 (and RFC 5464 METADATA) this server does not have: NO [BADEVENT].
UNSUPPORTED = frozenset({"annotationchange", "mailboxmetadatachange", "servermetadatachange"})
#: The BADEVENT response code: the events this server can report.
BADEVENT = b"[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
OTHER_FILTERS = {b"INBOXES": "inboxes", b"PERSONAL": "personal", b"SUBSCRIBED": "subscribed",
                 b"SUBTREE": "subtree", b"MAILBOXES": "mailboxes"}


class BadEvent(Exception):
    """An event this server does not support (NO [BADEVENT], RFC 5465 §6)."""


@dataclass(frozen=True, slots=True)
class Group:
    kind: str  # one of OTHER_FILTERS' values
    names: tuple[str, ...]  # SUBTREE/MAILBOXES: folder names (NFC, INBOX normalised)
    events: frozenset[str]

    def matches(self, name: str, subscribed) -> bool:
        if self.kind == "personal":
            return True
        if self.kind == "inboxes":
            return name == "INBOX"
        if self.kind == "subscribed":
            return name in subscribed
        if self.kind == "subtree":
            return any(name == n or name.startswith(n + "/") for n in self.names)
        return name in self.names


@dataclass(frozen=True, slots=True)
class NotifySpec:
    status: bool = False  # SET STATUS: a STATUS of every matched mailbox at once
    selected: frozenset[str] | None = None  # events for the selected mailbox; None: no filter
    delayed: bool = False  # SELECTED-DELAYED: expunges wait for a command that may report them
    fetch: tuple[FetchItem, ...] = ()  # MessageNew's fetch attributes (selected mailbox only)
    groups: tuple[Group, ...] = ()

    def events_for(self, name: str, subscribed=frozenset()) -> frozenset[str]:
        """The events a non-selected folder gets: those of the first group that matches it."""
        for g in self.groups:
            if g.matches(name, subscribed):
                return g.events
        return frozenset()

    @property
    def watches_folders(self) -> bool:
        return bool(self.groups)

    @property
    def flag_events(self) -> bool:
        """FlagChange asked for anywhere."""
        return FLAG_CHANGE in (self.selected or ()) or any(FLAG_CHANGE in g.events for g in self.groups)


def parse_notify(tokens: list, utf8: bool) -> NotifySpec | None:
    """``NONE`` → None; ``SET [STATUS] (filter events) …`` → the spec. ParseError for bad
    syntax and for what RFC 5465 §5 forbids; BadEvent for events not supported."""
    if not tokens or not isinstance(tokens[0], Atom):
        raise ParseError("NOTIFY needs SET or NONE")
    verb = tokens[0].upper()
    if verb == b"NONE":
        if len(tokens) != 1:
            raise ParseError("NOTIFY NONE takes no arguments")
        return None
    if verb != b"SET":
        raise ParseError("NOTIFY needs SET or NONE")
    rest = tokens[1:]
    status = False
    if rest and isinstance(rest[0], Atom) and rest[0].upper() == b"STATUS":
        status, rest = True, rest[1:]
    if not rest:
        raise ParseError("NOTIFY SET needs at least one event group")
    selected, delayed, fetch, groups = None, False, (), []
    for group in rest:
        if not isinstance(group, list) or len(group) < 2 or not isinstance(group[0], Atom):
            raise ParseError("Invalid event group")
        kind = group[0].upper()
        if kind in (b"SELECTED", b"SELECTED-DELAYED"):
            if selected is not None or len(group) != 2:
                raise ParseError("Invalid SELECTED event group")
            events, fetch = _events(group[1], selected_filter=True)
            selected, delayed = events, kind == b"SELECTED-DELAYED"
            continue
        if kind not in OTHER_FILTERS:
            raise ParseError("Unknown mailbox filter")
        names: tuple[str, ...] = ()
        if kind in (b"SUBTREE", b"MAILBOXES"):
            if len(group) != 3:
                raise ParseError("SUBTREE and MAILBOXES need mailbox names and events")
            names = _mailboxes(group[1], utf8)
        elif len(group) != 2:
            raise ParseError("Invalid event group")
        events, _ = _events(group[-1], selected_filter=False)
        groups.append(Group(OTHER_FILTERS[kind], names, events))
    return NotifySpec(status, selected, delayed, fetch, tuple(groups))


def _mailboxes(tok, utf8: bool) -> tuple[str, ...]:
    items = tok if isinstance(tok, list) else [tok]
    if not items:
        raise ParseError("Expected mailbox names")
    out = []
    for it in items:
        if not isinstance(it, (Atom, String)):
            raise ParseError("Invalid mailbox name")
        out.append(normalize_mailbox(decode_mailbox(bytes(it), utf8)).rstrip("/"))
    return tuple(out)


def _events(tok, *, selected_filter: bool) -> tuple[frozenset[str], tuple[FetchItem, ...]]:
    """``NONE`` or ``(event …)`` → (events, MessageNew's fetch attributes)."""
    if isinstance(tok, Atom) and tok.upper() == b"NONE":
        return frozenset(), ()
    if not isinstance(tok, list) or not tok:
        raise ParseError("Expected a list of events or NONE")
    events: set[str] = set()
    fetch: tuple[FetchItem, ...] = ()
    i = 0
    while i < len(tok):
        it = tok[i]
        if not isinstance(it, Atom):
            raise ParseError("Invalid event")
        name = bytes(it).decode("ascii", "replace").lower()
        if name == MESSAGE_NEW and i + 1 < len(tok) and isinstance(tok[i + 1], list):
            if not selected_filter:  # RFC 5465 §5.2: fetch attributes are for the selected mailbox
                raise ParseError("MessageNew fetch attributes are only valid for SELECTED")
            fetch = tuple(parse_fetch_atts(tok[i + 1]))
            i += 1
        if name in UNSUPPORTED:
            raise BadEvent(name)
        if name not in SUPPORTED:
            raise BadEvent(name)
        if selected_filter and name in MAILBOX_EVENTS:
            raise ParseError("Mailbox events do not apply to the selected mailbox")
        events.add(name)
        i += 1
    # RFC 5465 §5: MessageNew and MessageExpunge go together; FlagChange needs both.
    if (MESSAGE_NEW in events) != (MESSAGE_EXPUNGE in events):
        raise ParseError("MessageNew and MessageExpunge must be given together")
    if FLAG_CHANGE in events and MESSAGE_NEW not in events:
        raise ParseError("FlagChange needs MessageNew and MessageExpunge")
    return frozenset(events), fetch
