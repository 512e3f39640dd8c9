"""smtp/sieve_delivery.py's plan, pure parts: a script's keep follows the content checks' folder
(Junk), its fileinto does not; rejection by every recipient is answered in the SMTP dialogue."""

from __future__ import annotations

import datetime as _dt

from sieve.interpret import Result
from smtp.sieve_delivery import Decision, Plan
from storage.api import Account, AccountKind, AccountState


def account(i: int) -> Account:
    return Account(id=i, address=f"u{i}@example.gov.vn", display_name="U", kind=AccountKind.PERSONAL,
                   state=AccountState.ACTIVE, password_hash=None, created_at=_dt.datetime.now(_dt.timezone.utc),
                   password_changed_at=None, last_login_at=None, quota_bytes=None, used_bytes=0, used_messages=0)


def test_keep_goes_to_the_folder_the_content_checks_chose_fileinto_stays():
    a = account(1)
    plan = Plan({1: Decision(a, [("INBOX", frozenset({"\\Seen"})), ("Reports", frozenset())], Result())})
    targets = plan.targets(a, "Junk", 1000)
    assert [(t.folder, t.flags, t.quota_limit) for t in targets] == [("Junk", frozenset({"\\Seen"}), 1000), ("Reports", frozenset(), 1000)]
    assert plan.targets(account(2), "Junk", None) is None  # no script: the default target


def test_all_rejected_only_when_every_recipient_rejected_and_nothing_else():
    a, b = account(1), account(2)
    rejected = Decision(a, [], Result(reject="không"))
    assert Plan({1: rejected}).all_rejected([a])
    assert not Plan({1: rejected}).all_rejected([a, b])  # b has no script: it takes the message
    with_vacation = Decision(a, [], Result(reject="x", vacation=object()))  # type: ignore[arg-type]
    assert not Plan({1: with_vacation}).all_rejected([a])
