"""Outbound mail: the delivery worker over the store's queue. See ``service.py``."""

from smtp.outbound.service import OutboundService, start_outbound

__all__ = ["OutboundService", "start_outbound"]
