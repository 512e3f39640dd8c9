"""``mailserver dns DOMAIN [--check]``: the records parse as a zone file (dnspython) and carry
the configured listeners and the DKIM key present; ``--check`` asks the configured resolver — here
a dnspython-served local zone on a loopback address — and names what is missing or different."""

from __future__ import annotations

import random
import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rrset
import dns.rdatatype
import dns.zone
import pytest

DOMAIN = "example.gov.vn"


class ZoneServer:
    """Answers UDP queries from one dnspython zone (authoritative; NXDOMAIN for other names)."""

    def __init__(self, zone: dns.zone.Zone) -> None:
        self.zone = zone
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.address = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
            try:
                self.sock.bind((self.address, 53))
                break
            except OSError:
                continue
        else:
            pytest.skip("no loopback address with port 53 free (needs root)")
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            node = self.zone.get_node(question.name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
                if rdataset is not None:
                    response.answer.append(dns.rrset.from_rdata_list(question.name, rdataset.ttl, list(rdataset)))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def zone_text(server):
    server.cli("dkim", "keygen", DOMAIN)
    return server.cli("dns", DOMAIN).stdout


def test_records_are_a_valid_zone_with_listeners_and_dkim(server, zone_text):
    zone = dns.zone.from_text(zone_text, origin=DOMAIN + ".", relativize=False, check_origin=False)
    def one(name, rtype):
        return [r.to_text() for r in zone.find_rdataset(name, rtype)]
    assert one(f"{DOMAIN}.", "MX") == ["10 mail.example.gov.vn."]
    assert one(f"{DOMAIN}.", "TXT") == ['"v=spf1 mx -all"']
    assert "".join(one(f"mail._domainkey.{DOMAIN}.", "TXT")).startswith('"v=DKIM1; k=rsa; p=')
    assert one(f"_imaps._tcp.{DOMAIN}.", "SRV") == [f"0 1 {server.port('imaps')} mail.example.gov.vn."]
    assert one(f"_submission._tcp.{DOMAIN}.", "SRV") == [f"10 1 {server.port('submission')} mail.example.gov.vn."]
    assert one(f"_submissions._tcp.{DOMAIN}.", "SRV") == [f"0 1 {server.port('submissions')} mail.example.gov.vn."]
    assert one(f"_dmarc.{DOMAIN}.", "TXT")[0].startswith('"v=DMARC1; p=quarantine')
    assert one(f"_mta-sts.{DOMAIN}.", "TXT")[0].startswith('"v=STSv1; id=')
    assert one(f"_smtp._tls.{DOMAIN}.", "TXT")[0].startswith('"v=TLSRPTv1; rua=mailto:')
    assert one(f"autoconfig.{DOMAIN}.", "CNAME") == ["mail.example.gov.vn."]


def _check(server, ns: ZoneServer):
    return server.cli("--set", f"dns.nameservers=[{ns.address}]", "--set", "dns.static_only=false",
                      "--set", "dns.timeout=5", "dns", DOMAIN, "--check", check=False)


def test_check_against_the_published_zone(server, zone_text):
    full = dns.zone.from_text(zone_text, origin=DOMAIN + ".", relativize=False, check_origin=False)
    ns = ZoneServer(full)
    try:
        result = _check(server, ns)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all " in result.stdout and "MISSING" not in result.stdout
    finally:
        ns.close()
    partial = dns.zone.from_text(zone_text, origin=DOMAIN + ".", relativize=False, check_origin=False)
    partial.delete_rdataset(f"_dmarc.{DOMAIN}.", "TXT")
    partial.replace_rdataset(f"{DOMAIN}.", dns.rdataset.from_text("IN", "MX", 3600, "10 old-mx.example.gov.vn."))
    ns = ZoneServer(partial)
    try:
        result = _check(server, ns)
    finally:
        ns.close()
    assert result.returncode == 1
    assert f"MISSING   _dmarc.{DOMAIN}. TXT" in result.stdout
    assert "DIFFERENT" in result.stdout and "old-mx.example.gov.vn" in result.stdout
    assert "2 of " in result.stderr


def test_an_unknown_domain_is_refused(server):
    result = server.cli("dns", "other.example", check=False)
    assert result.returncode == 1 and "not one of the local domains" in result.stderr
