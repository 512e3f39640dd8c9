"""Announcements to every mailbox (R-OPS-3): one message, one stored body, many mailboxes."""
