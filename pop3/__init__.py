"""POP3 (RFC 1939) on Twisted over the storage API; imports nothing of smtp/ or imap/."""
