"""Sieve mail filtering (RFC 5228) as a pure library: compile a user's script (``sieve.script``,
over sievelib's parser), run it against one message (``sieve.interpret``), and the vacation
rules of RFC 5230 (``sieve.vacation``). No storage, network or framework code: SMTP delivery
(smtp/sieve_delivery.py) and the ManageSieve server (managesieve/) call it with what it needs.
"""
