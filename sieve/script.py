"""Compile a Sieve script: sievelib parses it (syntax, arguments, ``require``); we refuse
extensions we do not run and turn its command objects into plain ``Node`` trees with the string
quoting removed, which the interpreter walks.

What we add to sievelib: the comparators ``i;ascii-numeric`` (RFC 4790, needed by relational
``:count``) and ``i;unicode-casemap`` (RFC 5051) are accepted, and ``require`` of an extension
we do not implement is an error (RFC 5228 3.2), which sievelib lets through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sievelib import commands as _commands
from sievelib.parser import Parser

#: Extensions the interpreter runs (CAPABILITY "SIEVE" of ManageSieve lists them).
EXTENSIONS = (
    "fileinto", "reject", "envelope", "body", "vacation", "imap4flags", "variables", "date",
    "relational", "copy", "comparator-i;ascii-numeric", "comparator-i;unicode-casemap",
)  # fmt: skip
COMPARATORS = ("i;octet", "i;ascii-casemap", "i;ascii-numeric", "i;unicode-casemap")

for _values in (_commands.comparator["extra_arg"]["values"],):
    for _c in COMPARATORS:
        if f'"{_c}"' not in _values:
            _values.append(f'"{_c}"')


class ScriptError(ValueError):
    """The script cannot be used; the message names the line when the parser knows it."""


@dataclass
class Node:
    """One command or test: ``args`` by sievelib's argument names, tags as ``":is"``, strings
    unquoted, string lists as lists, nested tests as Nodes; ``extra`` holds a tag's value
    (``:days 3`` → ``extra["days"] == "3"``)."""

    name: str
    args: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)


@dataclass
class Script:
    commands: list[Node]
    requires: frozenset[str]


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unquote(raw: str) -> str:
    """A quoted string (backslash escapes) or a ``text:`` multi-line string (dot-stuffed)."""
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return _ESCAPE.sub(r"\1", raw[1:-1])
    if raw.startswith("text:"):
        body = raw.split("\n", 1)[1] if "\n" in raw else ""
        if body.endswith("\r\n."):
            body = body[:-3]
        elif body.endswith("\n."):
            body = body[:-2]
        lines = body.replace("\r\n", "\n").split("\n")
        return "\n".join(line[1:] if line.startswith("..") else line for line in lines) + ("\n" if body else "")
    return raw


def _value(value):
    if isinstance(value, _commands.Command):
        return _node(value)
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, str):
        return unquote(value)
    return value


def _node(command: _commands.Command) -> Node:
    return Node(
        command.name.lower(),
        {k: _value(v) for k, v in command.arguments.items()},
        {k: _value(v) for k, v in command.extra_arguments.items()},
        [_node(c) for c in command.children],
    )


def compile_script(text: str) -> Script:
    """Parse and check ``text``; ScriptError says what is wrong (and where)."""
    parser = Parser()
    if not parser.parse(text.encode("utf-8")):
        raise ScriptError(parser.error)
    nodes = [_node(c) for c in parser.result]
    requires: set[str] = set()
    for node in nodes:
        if node.name == "require":
            caps = node.args.get("capabilities", [])
            requires.update(c.lower() for c in (caps if isinstance(caps, list) else [caps]))
    unknown = sorted(requires - set(EXTENSIONS))
    if unknown:
        raise ScriptError(f"unsupported extension(s): {', '.join(unknown)}")
    return Script(nodes, frozenset(requires))
