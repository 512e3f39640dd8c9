"""A small authoritative-looking DNS server for tests (dnspython over UDP on a free port): answers
from a dict, and sets the AD bit for the names listed as signed, standing in for a validating
resolver (what DANE trusts, RFC 7672). Unknown names get NXDOMAIN."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class ZoneServer:
    def __init__(self, records: dict[tuple[str, str], list[str]], signed: set[str] = frozenset()) -> None:
        self.records = {(n.lower().rstrip("."), t.upper()): v for (n, t), v in records.items()}
        self.names = {n for n, _t in self.records}
        self.signed = {n.lower().rstrip(".") for n in signed}
        self.queries: list[tuple[str, str, bool]] = []  # (name, type, AD asked)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            rtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rtype, bool(query.flags & dns.flags.AD)))
            answer = self.records.get((name, rtype))
            if answer:
                response.answer.append(dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, question.rdtype, *answer))
            elif name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            if name in self.signed:
                response.flags |= dns.flags.AD
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()
