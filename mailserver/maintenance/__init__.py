"""Keeping an installation running: the scheduler of daily jobs (``daily``), consistent backups
of the data directory (``backup``) and the self-signed certificate of a first start (``tls``).
Nothing here knows about accounts or mailboxes.
"""
