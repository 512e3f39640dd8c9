"""Address rules of the regulations (R-ADDR-1..4): local parts from Vietnamese names.

Pure functions over plain data; the caller passes the local parts already taken in the domain
(including revoked ones it still reserves) and stores the result.

How each seed (the Vietnamese originals named in docs/requirements.md) was read:

- ``molisa`` (000, art. 7.3): given name without diacritics + first letter of the family name +
  first letter of the middle name (Nguyễn Văn An → ``annv``). A later holder of a taken name gets
  given name + first two letters of the family name + first two letters of the middle name
  (``anngva``). "Nếu không đặt được tên hộp thư theo hai trường hợp nêu trên, hộp thư … sẽ được
  thêm số thứ tự vào cuối của hộp thư": the sequence number goes at the end of the first form,
  the smallest free one from 1 (``annv1``, ``annv2`` …).
  With several middle names every middle word contributes its first letter (resp. two letters),
  as the one-letter form already does for "Nguyễn Thị Minh Khai" → ``khaintm``.
- ``lamdong`` (001, art. 5.2): ``tenhodem`` = full given name + first letters of the family and
  middle names. "Trong trường hợp tenhodem … bị trùng lặp thì từ người thứ hai trở đi sẽ được
  thêm ký tự số tương ứng vào sau phần tenhodem (… theo thứ tự đăng ký và cấp phát)": the digit
  "corresponding" to the second, third … person is that person's ordinal, so the first holder
  keeps ``annv``, the second gets ``annv2``, the third ``annv3`` (never ``annv1``); the smallest
  free ordinal is taken, so registrations in order get 2, 3, 4. Past the ninth holder the number
  has two digits. Units (art. 5.1): initials of the unit name; longer than 10 characters → set by
  agreement with the operator (:class:`OperatorChoiceRequired`); a unit with its own domain name
  uses that name.
- ``hcm-q4`` (004, art. 4.1): ``<Tên tài khoản>.q4`` for units (``<Tên đơn vị>.q4``) and persons
  (``<Tên người dùng>.q4``). The seed does not say how the user name is formed, so the account
  part follows the lamdong form and numbering (``annv.q4``, ``annv2.q4``); units use initials.
- ``most``, ``moj``, ``none``: the seeds (002, 003 art. 4) fix only the form ``xxx@domain`` /
  ``taikhoan@domain``; they use the molisa rule, the most detailed of the five.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

__all__ = [
    "ADDRESS_RULES",
    "AddressPolicyError",
    "AddressRule",
    "InvalidLocalPart",
    "InvalidName",
    "OperatorChoiceRequired",
    "ascii_fold_name",
    "derive_local_part",
    "split_name",
    "unit_local_part",
    "validate_local_part",
]


class AddressPolicyError(ValueError):
    """Base of the address rule errors; ``code`` is a stable English key for logs and the CLI."""

    code = "address_policy"


class InvalidName(AddressPolicyError):
    code = "invalid_name"


class OperatorChoiceRequired(AddressPolicyError):
    """The rule cannot decide: the operator must give the address (``--address``).

    ``candidate`` is what the rule produced, offered as a starting point.
    """

    code = "operator_choice_required"

    def __init__(self, message: str, candidate: str) -> None:
        super().__init__(message)
        self.candidate = candidate


class InvalidLocalPart(AddressPolicyError):
    code = "invalid_local_part"


@dataclass(frozen=True, slots=True)
class AddressRule:
    """One profile's address rule; fields are what a YAML profile may tune."""

    name: str
    two_letter_fallback: bool  # molisa art. 7.3 second form (anngva)
    number_start: int  # first sequence number appended to the first form
    suffix: str = ""  # appended after the number (hcm-q4: ".q4")
    unit_max_length: int | None = None  # lamdong art. 5.1: 10
    unit_stopwords: frozenset[str] = frozenset({"va", "cua"})  # "và", "của" as in "TT&TT"


ADDRESS_RULES: dict[str, AddressRule] = {
    "molisa": AddressRule("molisa", two_letter_fallback=True, number_start=1),
    "lamdong": AddressRule(
        "lamdong", two_letter_fallback=False, number_start=2, unit_max_length=10
    ),
    "hcm-q4": AddressRule("hcm-q4", two_letter_fallback=False, number_start=2, suffix=".q4"),
    "most": AddressRule("most", two_letter_fallback=True, number_start=1),
    "moj": AddressRule("moj", two_letter_fallback=True, number_start=1),
    "none": AddressRule("none", two_letter_fallback=True, number_start=1),
}

#: Role addresses (RFC 2142 and mail plumbing) never handed to a person or unit by a rule.
RESERVED_LOCAL_PARTS = frozenset(
    {"postmaster", "abuse", "hostmaster", "webmaster", "mailer-daemon", "root", "noc", "security"}
)

_MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*\Z")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def ascii_fold_name(name: str) -> str:
    """Remove Vietnamese diacritics and map đ/Đ to d/D (R-ADDR-4); case and spacing are kept.

    Works for precomposed (NFC) and decomposed (NFD, as macOS and some keyboards send) input
    alike; anything still outside ASCII afterwards is dropped, so the result is pure ASCII.
    """
    decomposed = unicodedata.normalize("NFD", name)
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    kept = kept.replace("đ", "d").replace("Đ", "D")
    return kept.encode("ascii", "ignore").decode("ascii")


def _words(text: str) -> list[str]:
    """Lower-case ASCII words; punctuation such as the apostrophe of "H'Hen" is dropped."""
    words = (_NOT_ALNUM.sub("", w) for w in ascii_fold_name(text).lower().split())
    return [w for w in words if w]


def split_name(full_name: str) -> tuple[str | None, list[str], str]:
    """Split a Vietnamese full name into (family, middle names, given name), folded to ASCII.

    Vietnamese order is family – middle … – given. A one-word name has only a given name; a
    two-word name has no middle name.
    """
    words = _words(full_name)
    if not words:
        raise InvalidName(f"name {full_name!r} has no letters to build an address from")
    if len(words) == 1:
        return None, [], words[0]
    return words[0], words[1:-1], words[-1]


def _candidates_base(full_name: str, rule: AddressRule) -> list[str]:
    family, middles, given = split_name(full_name)
    elders = ([family] if family else []) + middles
    forms = [given + "".join(w[0] for w in elders)]
    if rule.two_letter_fallback:
        second = given + "".join(w[:2] for w in elders)
        if second != forms[0]:
            forms.append(second)
    return forms


def _is_free(local: str, taken: set[str]) -> bool:
    return local not in taken and local not in RESERVED_LOCAL_PARTS


def _rule(rule: str | AddressRule) -> AddressRule:
    if isinstance(rule, AddressRule):
        return rule
    try:
        return ADDRESS_RULES[rule]
    except KeyError:
        known = ", ".join(ADDRESS_RULES)
        raise ValueError(f"unknown address rule {rule!r}; known: {known}") from None


def derive_local_part(full_name: str, taken: Collection[str], rule: str | AddressRule) -> str:
    """Local part for a person (R-ADDR-1..4), the first free one in the rule's order.

    ``taken`` holds the local parts already used in the domain (compared case-insensitively).
    """
    r = _rule(rule)
    used = {t.lower() for t in taken}
    forms = _candidates_base(full_name, r)
    local = next((f + r.suffix for f in forms if _is_free(f + r.suffix, used)), None)
    number = r.number_start
    while local is None:
        if _is_free(f"{forms[0]}{number}{r.suffix}", used):
            local = f"{forms[0]}{number}{r.suffix}"
        number += 1
    if len(local) > _MAX_LOCAL_PART:
        raise OperatorChoiceRequired(
            f"the address derived from {full_name!r} is longer than {_MAX_LOCAL_PART} characters",
            candidate=local[:_MAX_LOCAL_PART],
        )
    return local


def unit_local_part(
    unit_name: str, rule: str | AddressRule, taken: Collection[str], *, domain: str | None = None
) -> str:
    """Local part for a unit mailbox (R-ADDR-1..3): initials of the unit name's words.

    Numbers are kept whole ("Ủy ban nhân dân Quận 4" → ``ubndq4``); the connectives "và" and
    "của" are skipped as Vietnamese abbreviations do ("Sở Thông tin và Truyền thông" → ``stttt``).
    ``domain``: the unit's own domain name, whose first label is used instead (lamdong art. 5.1).
    A name over the rule's length limit or already taken raises :class:`OperatorChoiceRequired`:
    the regulations leave those to agreement with the operator.
    """
    r = _rule(rule)
    if domain:
        base = _NOT_ALNUM.sub("", domain.lower().split(".")[0])
        if not base:
            raise InvalidName(f"domain {domain!r} gives no usable name")
    else:
        words = [w for w in _words(unit_name) if w not in r.unit_stopwords]
        if not words:
            raise InvalidName(f"unit name {unit_name!r} has no letters to build an address from")
        base = "".join(w if w.isdigit() else w[0] for w in words)
    free = {t.lower() for t in taken}
    if r.unit_max_length is not None and len(base) > r.unit_max_length and not domain:
        raise OperatorChoiceRequired(
            f"unit address {base!r} is longer than {r.unit_max_length} characters; "
            "choose one with the unit (lamdong art. 5.1) and give it with --address",
            candidate=_unit_suggestion(base, r, free),
        )
    local = base + r.suffix
    if not _is_free(local, free):
        raise OperatorChoiceRequired(
            f"unit address {local!r} is already taken; choose another and give it with --address",
            candidate=_unit_suggestion(base, r, free),
        )
    return local


def _unit_suggestion(base: str, r: AddressRule, taken: set[str]) -> str:
    """A unit address the operator could give as is: within the rule's length, not taken
    (the initials cut to the limit, then a number: ``vpddbqhhdn``, ``ttt2``)."""
    limit = r.unit_max_length or len(base)
    for n in range(1, 1000):
        number = "" if n == 1 else str(n)
        local = base[: max(1, limit - len(number))] + number + r.suffix
        if _is_free(local, taken):
            return local
    raise InvalidName(f"no free unit address from {base!r}")  # a thousand units with these initials


def validate_local_part(local: str) -> InvalidLocalPart | None:
    """Check an operator-given local part: RFC 5321 dot-atom, ASCII, at most 64 octets.

    Returns the error (for the caller to raise or report) or None when it is acceptable.
    Agency addresses stay ASCII (R-ADDR-4) although SMTPUTF8 would allow more.
    """
    if not local:
        return InvalidLocalPart("the local part is empty")
    if not local.isascii():
        return InvalidLocalPart(
            f"{local!r} has non-ASCII characters; agency addresses are written without "
            f"diacritics (R-ADDR-4), e.g. {ascii_fold_name(local)!r}"
        )
    if len(local) > _MAX_LOCAL_PART:
        return InvalidLocalPart(f"{local!r} is longer than {_MAX_LOCAL_PART} characters (RFC 5321)")
    if not _DOT_ATOM.match(local):
        return InvalidLocalPart(
            f"{local!r} is not a dot-atom: letters, digits and !#$%&'*+/=?^_`{{|}}~- separated "
            "by single dots, not starting or ending with a dot (RFC 5321)"
        )
    return None
