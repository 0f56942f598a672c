"""Phone numbers normalised to E.164 with the `phonenumbers` library."""

from __future__ import annotations

from typing import Literal, NamedTuple

import phonenumbers

PhoneStatus = Literal["valid", "unverified", "invalid", "missing"]


class NormalisedPhone(NamedTuple):
    """`e164` is None unless the number could be normalised; `status` says how sure that is."""

    e164: str | None
    status: PhoneStatus


def normalise_phone(raw: str | None, default_region: str) -> NormalisedPhone:
    """E.164 for a number written nationally or internationally.

    `valid` numbers are assigned ranges; `unverified` ones have the right shape for their region but
    an unassigned range (Synthea's 555 numbers); anything else is `invalid` and not guessed at.
    """
    if raw is None or not raw.strip():
        return NormalisedPhone(None, "missing")
    try:
        number = phonenumbers.parse(raw, default_region.upper())
    except phonenumbers.NumberParseException:
        return NormalisedPhone(None, "invalid")
    if not phonenumbers.is_possible_number(number):
        return NormalisedPhone(None, "invalid")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalisedPhone(e164, "valid" if phonenumbers.is_valid_number(number) else "unverified")
