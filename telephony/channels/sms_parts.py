"""How many SMS a text costs: GSM-7 texts take 160 characters in one part and 153 per part when
split; anything else (Cyrillic) goes as UCS-2, 70 in one part and 67 per part when split. SMS.ru
charges per part, so budgets and cost estimates count parts, not messages."""

from __future__ import annotations

# The GSM 03.38 default alphabet (one septet each) and its extension table (two septets each:
# the escape and the character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_SPLIT = 160, 153
UCS2_SINGLE, UCS2_SPLIT = 70, 67
MAX_PARTS = 8  # SMS.ru refuses longer texts (error 205)


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def text_units(text: str) -> tuple[int, bool]:
    """The text's length in the units an SMS counts (septets or UTF-16 code units), and
    whether it goes as GSM-7."""
    if is_gsm7(text):
        return sum(2 if char in GSM7_EXTENDED else 1 for char in text), True
    return len(text.encode("utf-16-le")) // 2, False


def sms_parts(text: str) -> int:
    """Parts the text is sent (and charged) as; an empty text counts as one."""
    units, gsm7 = text_units(text)
    single, split = (GSM7_SINGLE, GSM7_SPLIT) if gsm7 else (UCS2_SINGLE, UCS2_SPLIT)
    if units <= single:
        return 1
    return -(-units // split)
