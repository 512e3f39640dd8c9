"""The operator CLI (docs/operations.md): arguments in, calls out, one-line errors.

``mailserver [--config FILE] [--set KEY=VALUE]... COMMAND``. Exit status: 0 success, 1 a refused
operation (with a message on stderr), 2 bad usage (click). The server itself is built by
``mailserver.app``; this package only parses arguments.

Layout: one module per command group, each importing only ``mailserver.cli.base`` (the error
mapping, the context object, argument helpers) and never another command module. ``COMMANDS``
below is the one table of what the root group offers; nothing registers itself on import.
"""

from __future__ import annotations

from pathlib import Path

import click

from mailserver.cli import account, announce, compliance, directory, dkim, dns, filters, group, ldap, lifecycle, mailbox, migrate, queue, quota, report, server, unit
from mailserver.cli.base import DEFAULT_CONFIG, Context, Group

__all__ = ["COMMANDS", "cli", "main"]

#: Every top-level command, in the order of docs/operations.md (help lists them sorted).
COMMANDS: tuple[click.Command, ...] = (
    server.init,  # init [--profile NAME] [--domain D] [--data-dir DIR]
    server.serve,
    server.health,  # health: the running server's /healthz
    server.config,  # config check
    server.db,  # db upgrade|backup|status
    account.account,  # account add|list|show|passwd|lock|unlock|delete|import|revoke|reissue|leave|exempt
    unit.unit,  # unit add|list|show|delegate|undelegate|handover|add-address
    group.group,  # group add|list|remove|policy|members
    quota.quota,  # quota show|set|class|report|recalc
    directory.directory,  # directory export
    queue.queue,  # queue list|show|retry|delete
    dkim.dkim,  # dkim keygen
    lifecycle.lifecycle,  # lifecycle run
    lifecycle.retention,  # retention run
    report.report,  # report checks|stats (R-OPS-1/2)
    announce.announce,  # announce --subject --body-file [--unit] [--at] (R-OPS-3)
    compliance.compliance,  # compliance [--profile P] [--format text|html|json]
    ldap.ldap,  # ldap sync
    filters.filters,  # filter list|show|put|activate|forward|alias
    migrate.migrate,  # migrate imap
    mailbox.mailbox,  # mailbox import|export
    dns.dns,  # dns DOMAIN [--check]
)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailserver", prog_name="mailserver", message="%(prog)s %(version)s")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="MAILSERVER_CONFIG", default=DEFAULT_CONFIG, show_default=True,
              help="Configuration file (default: $MAILSERVER_CONFIG, else ./data/mailserver.yaml).")
@click.option("--set", "settings_", metavar="KEY=VALUE", multiple=True, callback=lambda c, p, v: _parse_sets(v),
              help="Override one setting for this run, e.g. --set listeners.smtp.port=25 (repeatable).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, settings_: dict) -> None:
    """Mail server for Vietnamese public agencies: SMTP, IMAP4 and POP3 over one store."""
    explicit = ctx.get_parameter_source("config_path") is click.core.ParameterSource.COMMANDLINE
    ctx.obj = Context(config_path, explicit, settings_)


for _command in COMMANDS:
    cli.add_command(_command)


def _parse_sets(values: tuple[str, ...]) -> dict:
    """``listeners.smtp.port=25`` → ``{"listeners.smtp.port": 25}``; values are read as YAML."""
    import yaml

    result = {}
    for item in values:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        try:
            result[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise click.BadParameter(f"{item!r}: the value is not valid YAML", param_hint="--set") from None
    return result


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``mailserver``) and ``python -m mailserver``."""
    cli.main(args=argv, prog_name="mailserver")
