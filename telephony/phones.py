"""Phone normalization with `phonenumbers`, default region RU.

A client phone is stored as digits only, country code first, no plus: `79004443322`.
Short numbers (≤ 6 digits) are PBX extensions: internal parties, never clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "RU"
MAX_EXTENSION_DIGITS = 6
_MAX_INPUT_LENGTH = 64
# Characters people write around phone numbers; anything else (letters …) makes the input garbage.
_DECORATION = set(" ()-.+/\t\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")


class InvalidPhone(ValueError):
    """The text is not a phone number; the message says why, in plain words."""


@dataclass(frozen=True)
class Extension:
    """An internal PBX number such as `701`."""

    number: str


def _digits_of(raw: str) -> str:
    if len(raw) > _MAX_INPUT_LENGTH:
        raise InvalidPhone("phone is too long")
    text = raw.strip()
    if not text:
        raise InvalidPhone("phone is empty")
    stray = {ch for ch in text if not ch.isdigit() and ch not in _DECORATION}
    if stray:
        raise InvalidPhone(f"phone contains characters that are not part of a number: {text!r}")
    if "+" in text[1:] or (text.count("+") and not text.startswith("+")):
        raise InvalidPhone(f"a plus sign may only lead a phone: {text!r}")
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if len(digits) != sum(ch.isdigit() for ch in text):
        raise InvalidPhone(f"phone contains non-ASCII digits: {text!r}")
    if not digits:
        raise InvalidPhone(f"phone has no digits: {text!r}")
    return digits


def _candidates(text: str, digits: str) -> list[tuple[str, str | None]]:
    """The readings worth trying, most likely first: (text to parse, region)."""
    if text.startswith("+"):
        return [("+" + digits, None)]
    if len(digits) == 10:  # a Russian national number without a trunk prefix: 9004443322
        return [(digits, DEFAULT_REGION)]
    if len(digits) == 11 and digits[0] == "8":  # the Russian trunk prefix: 8 900 444-33-22
        return [(digits, DEFAULT_REGION), ("+" + digits, None)]
    # Country code first, no plus, as PBX webhooks send: 79004443322, 375291234567.
    return [("+" + digits, None), (digits, DEFAULT_REGION)]


# Every push names its caller and the number dialled, the same few over and over: parsing one
# costs more than storing the push. A refusal (InvalidPhone) is never cached. The pushes of a
# call come within minutes, so the recent phones are enough: about 200 bytes an entry, a
# 16,384-entry cache was 3.2 MB of a long-running serve.
PHONE_CACHE = 4096


@lru_cache(maxsize=PHONE_CACHE)
def parse_party(raw: str) -> str | Extension:
    """Normalize a phone, or recognize a PBX extension. Raises InvalidPhone for anything else."""
    digits = _digits_of(raw)
    text = raw.strip()
    if len(digits) <= MAX_EXTENSION_DIGITS and not text.startswith("+"):
        return Extension(digits)
    for candidate, region in _candidates(text, digits):
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        reason = phonenumbers.is_possible_number_with_reason(number)
        # IS_POSSIBLE_LOCAL_ONLY (a number without its area code) cannot be dialled back.
        if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return e164.lstrip("+")
    raise InvalidPhone(f"not a valid phone number: {text!r}")


def normalize_phone(raw: str) -> str:
    """`8 (900) 444-33-22` → `79004443322`. Extensions and garbage raise InvalidPhone."""
    party = parse_party(raw)
    if isinstance(party, Extension):
        raise InvalidPhone(f"{party.number!r} is an internal extension, not a client phone")
    return party


def looks_like_phone(value: str) -> str | None:
    """The normalized phone if a free-form value (a client variable) is one, else None."""
    try:
        return normalize_phone(value)
    except InvalidPhone:
        return None


# Every note about a call shows its client's phone: it was parsed again for each of them (6% of
# applying's samples in bench/apply.py --py-spy). Bounded as the parse cache above.
@lru_cache(maxsize=PHONE_CACHE)
def format_phone(phone: str) -> str:
    """A normalized phone for people: `+7 900 444-33-22`."""
    try:
        number = phonenumbers.parse("+" + phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# Mobile or "fixed line or mobile" (some countries cannot tell them apart by the number).
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@lru_cache(maxsize=4096)
def is_mobile(phone: str) -> bool:
    """Whether a normalized phone can take an SMS: a mobile number by its number plan
    (`phonenumbers`). A landline (`7495…`), a toll-free `8800…` or an unknown plan: False."""
    try:
        number = phonenumbers.parse("+" + phone, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES
