"""Accounts as the running server sees them: logins and password hashing (``auth``), bulk creation
from a registration form (``provisioning``), the published directory (``directory``) and the
daily job that applies the profile's lifecycle deadlines (``lifecycle``). The rules themselves
are pure functions in ``mailserver.policy``; the records are in the store.
"""
