"""Identity policies as pure functions over plain data.

- ``addresses``: local parts from Vietnamese names and unit names (R-ADDR-1..4).
- ``passwords``: password rules and initial passwords (R-PASS-2/3).
- ``lifecycle``: account state transitions due at a given time (R-LIFE-2..5, R-PASS-1/3).

No I/O, no clock (``now`` is an argument), no storage, Twisted or aiosmtpd imports.
"""
