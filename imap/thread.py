"""RFC 5256 §3 THREAD algorithms over storage.search.ThreadMessage values, and the THREAD
response syntax. Pure: the store gives the messages (UID order), the session maps UIDs to
sequence numbers afterwards.

A thread is a ``Node``: ``uid`` None is a dummy (a message referred to but not in the folder,
or the parent step (6) makes for two threads of one subject); ``children`` in order.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Sequence

from storage.search import ThreadMessage


@dataclass(eq=False, slots=True)
class Node:
    msg: ThreadMessage | None = None
    parent: "Node | None" = None
    children: list["Node"] = field(default_factory=list)

    @property
    def uid(self) -> int | None:
        return self.msg.uid if self.msg else None

    def add(self, child: "Node") -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def reaches(self, other: "Node") -> bool:
        """Whether ``other`` is this node or one of its ancestors."""
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def _key(node: Node) -> tuple[_dt.datetime, int]:
    """Sent date, then mailbox order (RFC 5256 §2.2); a dummy sorts as its first child."""
    while node.msg is None and node.children:
        node = node.children[0]
    return (node.msg.sent, node.msg.uid) if node.msg else (_dt.datetime.min.replace(tzinfo=_dt.UTC), 0)


def orderedsubject(messages: Sequence[ThreadMessage]) -> list[Node]:
    """ORDEREDSUBJECT: messages grouped by base subject; in each, the earliest sent is the
    parent and the others its children by sent date; threads ordered by their first message."""
    groups: dict[str, list[ThreadMessage]] = {}
    for msg in sorted(messages, key=lambda m: (m.subject, m.sent, m.uid)):
        groups.setdefault(msg.subject, []).append(msg)
    roots = []
    for items in groups.values():
        root = Node(items[0])
        for msg in items[1:]:
            root.add(Node(msg))
        roots.append(root)
    roots.sort(key=_key)
    return roots


def references(messages: Sequence[ThreadMessage]) -> list[Node]:
    """REFERENCES (RFC 5256 §3, after JWZ): link by Message-ID/References/In-Reply-To, prune
    dummies, merge root threads by base subject, sort siblings by sent date."""
    table: dict[str, Node] = {}
    nodes: list[Node] = []
    for msg in messages:
        # (1)(A) the message's container; no Message-ID or a duplicate one: a unique container
        node = table.get(msg.message_id) if msg.message_id else None
        if node is None or node.msg is not None:
            node = Node(msg)
            if msg.message_id and msg.message_id not in table:
                table[msg.message_id] = node
        else:
            node.msg = msg
        nodes.append(node)
        # (1)(B) link the References chain, keeping links made before and making no loop
        previous: Node | None = None
        for ref in msg.references:
            current = table.get(ref)
            if current is None:
                current = table[ref] = Node()
            if previous is not None and current.parent is None and not previous.reaches(current):
                previous.add(current)
            previous = current
        # (1)(C) the last reference is the parent, whatever parent the message had
        if previous is not None and previous.reaches(node):
            continue  # the link would make a loop: none is made
        if node.parent is not None and node.parent is not previous:
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and node.parent is None:
            previous.add(node)
    # (2) the root set; (3) the table is no longer needed
    roots = [n for n in {id(n): n for n in list(table.values()) + nodes}.values() if n.parent is None]
    roots.sort(key=lambda n: _first_uid(n))
    # (4) prune dummies
    roots = _prune(roots, top=True)
    for r in roots:
        r.parent = None
    # (5) sort the root set (a dummy by its first child, its children sorted first)
    for r in roots:
        if r.msg is None:
            r.children.sort(key=_key)
    roots.sort(key=_key)
    # (6) merge threads of one base subject
    roots = _merge_subjects(roots)
    # (7) sort every set of siblings, the deepest first
    _sort_tree(roots)
    roots.sort(key=_key)
    return roots


def _first_uid(node: Node) -> int:
    return min((n.msg.uid for n in _walk(node) if n.msg), default=0)


def _walk(node: Node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children)


def _prune(siblings: list[Node], top: bool) -> list[Node]:
    out: list[Node] = []
    for node in siblings:
        node.children = _prune(node.children, top=False)
        for c in node.children:
            c.parent = node
        if node.msg is not None:
            out.append(node)
        elif not node.children:
            continue  # a dummy without children goes
        elif top and len(node.children) > 1:
            out.append(node)  # its children would become several roots: the dummy stays
        else:
            out.extend(node.children)  # promoted to this level
    return out


def _root_subject(node: Node) -> ThreadMessage | None:
    if node.msg is None:
        return node.children[0].msg if node.children else None
    return node.msg


def _merge_subjects(roots: list[Node]) -> list[Node]:
    subjects: dict[str, Node] = {}
    for node in roots:  # (A) and (B)
        msg = _root_subject(node)
        if msg is None or not msg.subject:
            continue
        old = subjects.get(msg.subject)
        if old is None:
            subjects[msg.subject] = node
            continue
        old_reply = old.msg.reply if old.msg else False
        if (node.msg is None and old.msg is not None) or (old_reply and node.msg is not None and not msg.reply):
            subjects[msg.subject] = node
    out = list(roots)
    for node in roots:  # (C)
        msg = _root_subject(node)
        if msg is None or not msg.subject:
            continue
        other = subjects[msg.subject]
        if other is node or node not in out:
            continue
        if other.msg is None and node.msg is None:
            for c in list(node.children):
                other.add(c)
            out.remove(node)
        elif other.msg is None:
            other.add(node)
            out.remove(node)
        elif node.msg is not None and node.msg.reply and not other.msg.reply:
            other.add(node)
            out.remove(node)
        else:
            dummy = Node()
            out[out.index(other)] = dummy
            out.remove(node)
            dummy.add(other)
            dummy.add(node)
            subjects[msg.subject] = dummy
    return out


def _sort_tree(siblings: list[Node]) -> None:
    for node in siblings:
        _sort_tree(node.children)
        node.children.sort(key=_key)


def render(roots: Sequence[Node], number) -> bytes:
    """The THREAD response's threads: ``(1 2 (3)(4))``; ``number(uid)`` gives the number sent
    (the UID, or its sequence number)."""

    def chain(node: Node) -> bytes:
        parts: list[bytes] = []
        while True:
            if node.msg is not None:
                parts.append(b"%d" % number(node.msg.uid))
            if len(node.children) == 1 and node.msg is not None:
                node = node.children[0]
                continue
            if node.children:
                parts.append(b"".join(b"(" + chain(c) + b")" for c in node.children))
            return b" ".join(parts)

    return b"".join(b"(" + chain(r) + b")" for r in roots)
