"""Phone normalization: every written form of one number is one client."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.phones import (
    Extension,
    InvalidPhone,
    format_phone,
    normalize_phone,
    parse_party,
)

CONTRACT_FORMS = ["8 (900) 444-33-22", "+7 900 444 33 22", "9004443322", "79004443322"]


@pytest.mark.parametrize("written", CONTRACT_FORMS)
def test_contract_forms_are_one_number(written: str) -> None:
    assert normalize_phone(written) == "79004443322"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+375 29 123-45-67", "375291234567"),  # Belarus keeps its 12 digits
        ("375291234567", "375291234567"),
        ("+380 50 123 4567", "380501234567"),
        ("77011234567", "77011234567"),  # Kazakhstan shares +7
        ("+44 20 7946 0958", "442079460958"),
        ("8-800-555-35-35", "78005553535"),
        ("+7(495)123-45-67", "74951234567"),
    ],
)
def test_other_countries_keep_their_length(written: str, expected: str) -> None:
    assert normalize_phone(written) == expected


@pytest.mark.parametrize("short", ["1", "101", "7010", "123456"])
def test_short_numbers_are_extensions_not_clients(short: str) -> None:
    assert parse_party(short) == Extension(short)
    with pytest.raises(InvalidPhone, match="internal extension"):
        normalize_phone(short)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "abc",
        "позвоните мне",
        "1234567",
        "+",
        "++79004443322",
        "79004443322; DROP",
        "7900444332２",
        "9" * 70,
        "+7 900 444 33 22 ext",
    ],
)
def test_garbage_is_refused_with_a_clear_error(garbage: str) -> None:
    with pytest.raises(InvalidPhone) as refused:
        normalize_phone(garbage)
    assert str(refused.value)


russian_mobile = st.integers(min_value=9000000000, max_value=9999999999).map(str)


def written_forms(national: str) -> list[str]:
    a, b, c, d = national[:3], national[3:6], national[6:8], national[8:]
    return [
        national,
        "7" + national,
        "8" + national,
        "+7" + national,
        f"8 ({a}) {b}-{c}-{d}",
        f"+7 {a} {b} {c} {d}",
        f"+7-{a}-{b}-{c}-{d}",
        f"8{a}{b}{c}{d}",
        f" +7 ({a}) {b}{c}{d} ",
        f"7.{a}.{b}.{c}.{d}",
    ]


@given(russian_mobile)
def test_every_written_form_of_a_russian_mobile_is_the_same(national: str) -> None:
    assert {normalize_phone(form) for form in written_forms(national)} == {"7" + national}


@given(russian_mobile)
def test_normalization_is_idempotent_and_formatting_round_trips(national: str) -> None:
    phone = normalize_phone("8" + national)
    assert normalize_phone(phone) == phone
    assert normalize_phone(format_phone(phone)) == phone
    assert format_phone(phone).startswith("+7 ")


# Countries whose numbers reach a Russian business: example numbers of each, with their last
# digits drawn (a number's length, not its digits, makes it possible), written the ways people
# and PBXs write them.
REGIONS = ["RU", "KZ", "BY", "UA", "UZ", "AM", "GE", "KG", "DE", "GB", "TR", "US"]
KINDS = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


@st.composite
def foreign_or_russian_number(draw: st.DrawFn) -> tuple[str, str]:
    """(a written form, the digits it must normalize to)."""
    example = phonenumbers.example_number_for_type(
        draw(st.sampled_from(REGIONS)), draw(st.sampled_from(KINDS))
    )
    assert example is not None
    national = str(example.national_number)
    tail = draw(st.text("0123456789", min_size=2, max_size=2))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-2]}{tail}")
    digits = f"{number.country_code}{number.national_number}"
    style = draw(st.sampled_from(["international", "e164", "digits", "dashes"]))
    if style == "digits" and len(digits) == 10:
        style = "e164"  # ten bare digits are a Russian number without its 8 (see above)
    if style == "international":
        written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    elif style == "e164":
        written = "+" + digits
    elif style == "digits":  # country code first, no plus, as PBX webhooks send
        written = digits
    else:
        written = "+" + "-".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    return draw(st.sampled_from(["", " "])) + written, digits


@given(foreign_or_russian_number())
def test_real_numbers_of_many_countries_are_accepted(case: tuple[str, str]) -> None:
    written, digits = case
    assert normalize_phone(written) == digits
    assert parse_party(written) == digits


@given(st.text(max_size=80))
def test_any_text_is_a_phone_an_extension_or_a_clear_refusal(text: str) -> None:
    try:
        party = parse_party(text)
    except InvalidPhone as refused:
        assert str(refused)
        return
    if isinstance(party, Extension):
        assert party.number.isdigit() and len(party.number) <= 6
    else:
        assert party.isdigit() and 8 <= len(party) <= 15


@given(st.text(alphabet="0123456789", min_size=1, max_size=6))
def test_every_short_number_is_an_extension(number: str) -> None:
    # The other side of the property above: digit strings that must not be refused.
    assert parse_party(number) == Extension(number)
