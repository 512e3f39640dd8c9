"""``dkim keygen``: DKIM signing keys for outgoing mail (R-SEC-2) and the DNS record to publish."""

from __future__ import annotations

import re

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
@click.option("--type", "kind", type=click.Choice(["rsa", "ed25519"]), default="rsa", show_default=True,
              help="rsa (every verifier) or ed25519 (RFC 8463, signed in addition to RSA).")
@click.option("--selector", help="Selector (default: dkim.selector, 'mail'; for ed25519 dkim.ed25519_selector, 'ed25519').")
@click.option("--bits", type=click.IntRange(1024, 4096), default=2048, show_default=True, help="RSA key size.")
@pass_ctx
def dkim_keygen(obj: Context, domain: str, kind: str, selector: str | None, bits: int) -> None:
    """Create DOMAIN's signing key and print the DNS TXT record to publish."""
    from config.settings import SELECTOR_PATTERN
    from smtp.dkim import generate_key, key_path, txt_record_for

    settings = obj.settings
    domain = domain.strip().lower().rstrip(".")
    if domain not in {d.lower() for d in settings.domains}:
        raise Refused(f"{domain} is not one of the local domains ({', '.join(settings.domains)})")
    if kind == "ed25519":
        active = settings.dkim.ed25519_selectors.get(domain, settings.dkim.ed25519_selector)
        setting = "dkim.ed25519_selectors"
    else:
        active = settings.dkim.selectors.get(domain, settings.dkim.selector)
        setting = "dkim.selectors"
    selector = selector or active or "ed25519"
    if not re.match(SELECTOR_PATTERN, selector):
        raise Refused(f"{selector!r} is not a selector (DNS labels: letters, digits, '-', '.')")
    try:
        path, record = generate_key(settings.data_dir, domain, selector, kind=kind, bits=bits)
    except FileExistsError:
        existing = key_path(settings.data_dir, domain, selector)
        raise Refused(
            f"{existing} exists (rotate with a new --selector); its record: "
            f"{selector}._domainkey.{domain}. IN TXT {txt_strings(txt_record_for(existing))}"
        ) from None
    click.echo(f"wrote {path}")
    click.echo("publish this DNS record:")
    click.echo(f"{selector}._domainkey.{domain}. IN TXT ( {txt_strings(record)} )")
    if selector != active:
        click.echo(f"then set {setting}: {{{domain}: {selector}}} to sign with it (now: {active or 'off'})")
