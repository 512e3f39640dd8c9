"""The log line of an accepted message says what happened to it, once: queued mail is
"queued", not "delivered … queued=1"."""

from __future__ import annotations

from smtp.delivery import outcome_words


def test_queued_mail_is_said_to_be_queued_not_delivered():
    assert outcome_words(0, 1, 0, 120) == "queued for 1 remote recipient(s) size=120"


def test_each_outcome_is_named_once_and_only_when_it_happened():
    line = outcome_words(2, 1, 1, 5)
    assert line == ("delivered to 2 local recipient(s), queued for 1 remote recipient(s), "
                    "1 refused after acceptance (notice sent) size=5")
    assert outcome_words(3, 0, 0, 9) == "delivered to 3 local recipient(s) size=9"
