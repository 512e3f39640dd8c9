"""The agency's LDAP directory (R-PROTO-3): password checks by bind (``bind``) and the people and
units it lists turned into accounts and units (``sync``). ldap3 speaks the protocol.

ldap3 2.9.1 (the newest release) reads pyasn1's ``tagMap``/``typeMap``, which pyasn1 0.6.1+
deprecates with a DeprecationWarning at import: the one import of ldap3 happens here, with that
warning (and only that one) silenced, so neither the log nor the warnings-as-errors suite sees it.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"(tagMap|typeMap) is deprecated", category=DeprecationWarning)
    import ldap3  # noqa: F401  (imported once, for the side effect of loading it quietly)
