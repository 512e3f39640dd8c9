"""``dns DOMAIN [--check]``: the zone-file records to publish for a local domain, and whether the
resolver the server is configured with (``dns.nameservers``) answers them
(mailserver/maintenance/dns_records.py)."""

from __future__ import annotations

import click

from mailserver.cli.base import Context, Refused, pass_ctx


@click.command("dns")
@click.argument("domain")
@click.option("--check", "do_check", is_flag=True, help="Resolve every record and say what is missing or different.")
@click.option("--dmarc-policy", type=click.Choice(["none", "quarantine", "reject"]), default="quarantine", show_default=True)
@pass_ctx
def dns(obj: Context, domain: str, do_check: bool, dmarc_policy: str) -> None:
    """Print DOMAIN's MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV and autoconfig records."""
    from mailserver.maintenance.dns_records import check, dkim_keys, records
    from smtp.dkim_keys import txt_record_for

    settings = obj.settings
    domain = domain.strip().lower().rstrip(".")
    if domain not in {d.lower() for d in settings.domains}:
        raise Refused(f"{domain} is not one of the local domains ({', '.join(settings.domains)})")
    keys = [(sel, txt_record_for(path)) for sel, path in dkim_keys(settings.data_dir, domain)]
    wanted = records(settings, domain, keys, dmarc_policy=dmarc_policy)
    if not do_check:
        click.echo(f"; records for {domain} (mailserver dns)")
        if not keys:
            click.echo(f"; no DKIM key yet: mailserver dkim keygen {domain}")
        for r in wanted:
            click.echo(r.zone_line())
        return
    if settings.dns.static_only:
        raise Refused("dns.static_only is on: this server asks no resolver (set dns.nameservers, or turn it off)")
    results = check(wanted, _lookup(settings))
    bad = 0
    for record, state, found in results:
        line = f"{state.upper():<9} {record.name} {record.type} {record.value}"
        if state != "ok":
            bad += 1
            line += f"   (found: {found})" if found else ""
        click.echo(line)
    if bad:
        raise Refused(f"{bad} of {len(results)} record(s) missing or different")
    click.echo(f"all {len(results)} records published")


def _lookup(settings):
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not settings.dns.nameservers)
    if settings.dns.nameservers:
        resolver.nameservers = list(settings.dns.nameservers)
    resolver.lifetime = settings.dns.timeout

    def lookup(name: str, rtype: str) -> list[str]:
        try:
            answer = resolver.resolve(name, rtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            raise Refused(f"the resolver did not answer for {name} {rtype} within {settings.dns.timeout} s") from None
        if answer.rrset is None:
            return []
        if rtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        return [r.to_text() for r in answer.rrset]

    return lookup
