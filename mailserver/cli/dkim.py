"""``dkim keygen``: DKIM signing keys for outgoing mail (R-SEC-2) and the DNS record to publish."""

from __future__ import annotations

import click

from mailserver.cli.base import Context, Group, Refused, pass_ctx


def txt_strings(value: str, size: int = 255) -> str:
    """A TXT value as quoted strings of at most 255 bytes (RFC 1035 character-strings)."""
    return " ".join(f'"{value[i : i + size]}"' for i in range(0, len(value), size))


@click.group(cls=Group)
def dkim() -> None:
    """DKIM keys for signing outgoing mail (R-SEC-2)."""


@dkim.command("keygen")
@click.argument("domain")
@click.option("--selector", help="Selector (default: dkim.selector of the configuration, 'mail').")
@click.option("--bits", type=click.IntRange(1024, 4096), default=2048, show_default=True)
@pass_ctx
def dkim_keygen(obj: Context, domain: str, selector: str | None, bits: int) -> None:
    """Create DOMAIN's signing key and print the DNS TXT record to publish."""
    from smtp.dkim import generate_key, key_path, txt_record_for

    settings = obj.settings
    domain = domain.strip().lower().rstrip(".")
    if domain not in {d.lower() for d in settings.domains}:
        raise Refused(f"{domain} is not one of the local domains ({', '.join(settings.domains)})")
    selector = selector or settings.dkim.selectors.get(domain, settings.dkim.selector)
    try:
        path, record = generate_key(settings.data_dir, domain, selector, bits=bits)
    except FileExistsError:
        existing = key_path(settings.data_dir, domain, selector)
        raise Refused(
            f"{existing} exists (rotate with a new --selector); its record: "
            f"{selector}._domainkey.{domain}. IN TXT {txt_strings(txt_record_for(existing))}"
        ) from None
    click.echo(f"wrote {path}")
    click.echo("publish this DNS record:")
    click.echo(f"{selector}._domainkey.{domain}. IN TXT ( {txt_strings(record)} )")
    active = settings.dkim.selectors.get(domain, settings.dkim.selector)
    if selector != active:
        click.echo(f"then set dkim.selectors: {{{domain}: {selector}}} to sign with it (now: {active})")
