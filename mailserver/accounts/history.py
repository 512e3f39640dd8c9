"""Password history (``passwords.history``): a new password must differ from the current one
and from those before it, as many in all as the profile says (R-PASS-4: a periodic change that
goes back to an old password changes nothing). Blocking (argon2 per earlier hash): call it in a
thread."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from config.settings import Passwords
from mailserver.policy.passwords import Reason, reused
from storage.api import Store

_hasher = PasswordHasher()


def _verify(hashed: str, plain: str) -> bool:
    try:
        return _hasher.verify(hashed, plain)
    except (VerificationError, InvalidHashError):
        return False


def refuse_reused(store: Store, rules: Passwords, account_id: int, plain: str) -> Reason | None:
    """The refusal when ``plain`` is among the last ``rules.history`` passwords, else None."""
    if rules.history <= 0:
        return None
    hashes = store.accounts.password_history(account_id, rules.history)
    return reused(unicodedata.normalize("NFC", plain), hashes, _verify)
