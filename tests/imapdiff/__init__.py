"""Differential IMAP conformance harness: scripted sessions run against our server and a private
Dovecot 2.3, compared after a narrow normalisation (see ``normalise.py``)."""
