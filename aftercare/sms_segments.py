"""How many SMS segments a text takes, and in which encoding: GSM-7 (160 characters, 153 per part of a
longer message; the extension characters count twice) or, when any character is outside it, UCS-2
(70 UTF-16 units, 67 per part)."""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsSize:
    """A text's encoding, its length in that encoding's units, and its segments."""

    encoding: str
    units: int
    segments: int


def sms_size(text: str) -> SmsSize:
    """The encoding and segment count a carrier would use for `text`."""
    if all(character in GSM_BASIC or character in GSM_EXTENSION for character in text):
        units = sum(2 if character in GSM_EXTENSION else 1 for character in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // part)
    return SmsSize(encoding, units, segments if units else 0)
