"""COMPRESS (RFC 4978): the command; the deflating transport is imap/compress.py."""

from __future__ import annotations

from imap.state import Session
from imap.wire import Atom, ParseError

OK, NO = b"OK", b"NO"


def compress(s: Session, tag: bytes, mechanism):
    if mechanism.upper() != b"DEFLATE":
        return NO, b"[CANNOT] Only DEFLATE is supported"
    if s.conn.compressing:
        return NO, b"[COMPRESSIONACTIVE] Already compressing"
    s.conn.respond(OK, tag, b"DEFLATE active")
    s.conn.start_compress()
    return None


def arg_mechanism(s: Session, tokens: list):
    if not tokens or not isinstance(tokens[0], Atom):
        raise ParseError("COMPRESS needs a mechanism")
    return bytes(tokens[0]), tokens[1:]
