"""Figures about the whole store for the operator's monitoring (the portal's ``/metrics``).

A few aggregate queries, each cheap with the existing indexes (or a scan of the accounts table,
thousands of rows): meant to be read every 15-60 s by Prometheus or Zabbix, not per message."""

from __future__ import annotations

from storage.api.stats import StoreStats

from sqlalchemy import func, select

from storage import models as m


def store_stats(store) -> StoreStats:
    with store.reading() as conn:
        accounts = {(kind, state): n for kind, state, n in conn.execute(
            select(m.Account.kind, m.Account.state, func.count()).group_by(m.Account.kind, m.Account.state))}
        used, messages = conn.execute(
            select(func.coalesce(func.sum(m.Account.used_bytes), 0), func.coalesce(func.sum(m.Account.used_messages), 0))
        ).one()
        bodies = conn.scalar(select(func.count()).select_from(m.Blob)) or 0
        outbound = dict(conn.execute(
            select(m.OutboundRecipient.state, func.count()).group_by(m.OutboundRecipient.state)).all())
    return StoreStats(accounts, int(used), int(messages), int(bodies), outbound, store.index_backlog())
