"""The recipient's address block, as it is printed in an envelope window."""

from __future__ import annotations

from typing import Any

_DOMESTIC = frozenset({"US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"})
# USPS two-letter codes, for records that spell the state out (Synthea does).
_US_STATES = {
    "ALABAMA": "AL",
    "ALASKA": "AK",
    "ARIZONA": "AZ",
    "ARKANSAS": "AR",
    "CALIFORNIA": "CA",
    "COLORADO": "CO",
    "CONNECTICUT": "CT",
    "DELAWARE": "DE",
    "DISTRICT OF COLUMBIA": "DC",
    "FLORIDA": "FL",
    "GEORGIA": "GA",
    "HAWAII": "HI",
    "IDAHO": "ID",
    "ILLINOIS": "IL",
    "INDIANA": "IN",
    "IOWA": "IA",
    "KANSAS": "KS",
    "KENTUCKY": "KY",
    "LOUISIANA": "LA",
    "MAINE": "ME",
    "MARYLAND": "MD",
    "MASSACHUSETTS": "MA",
    "MICHIGAN": "MI",
    "MINNESOTA": "MN",
    "MISSISSIPPI": "MS",
    "MISSOURI": "MO",
    "MONTANA": "MT",
    "NEBRASKA": "NE",
    "NEVADA": "NV",
    "NEW HAMPSHIRE": "NH",
    "NEW JERSEY": "NJ",
    "NEW MEXICO": "NM",
    "NEW YORK": "NY",
    "NORTH CAROLINA": "NC",
    "NORTH DAKOTA": "ND",
    "OHIO": "OH",
    "OKLAHOMA": "OK",
    "OREGON": "OR",
    "PENNSYLVANIA": "PA",
    "PUERTO RICO": "PR",
    "RHODE ISLAND": "RI",
    "SOUTH CAROLINA": "SC",
    "SOUTH DAKOTA": "SD",
    "TENNESSEE": "TN",
    "TEXAS": "TX",
    "UTAH": "UT",
    "VERMONT": "VT",
    "VIRGINIA": "VA",
    "WASHINGTON": "WA",
    "WEST VIRGINIA": "WV",
    "WISCONSIN": "WI",
    "WYOMING": "WY",
}


def address_block(name: str | None, address: dict[str, Any]) -> list[str]:
    """Lines of a postal address from a FHIR `Address`: name, street lines, city line, country.

    The country is left out for domestic mail, where a spelled-out state becomes its USPS code. An
    address without street or city falls back to its `text`, or gives no lines.
    """
    street = [line.strip() for line in address.get("line") or [] if isinstance(line, str) and line.strip()]
    city = _text(address.get("city"))
    country = _text(address.get("country"))
    domestic = not country or country.upper() in _DOMESTIC
    state = _text(address.get("state"))
    if domestic:
        state = _US_STATES.get(state.upper(), state)
    region = " ".join(part for part in (state, _text(address.get("postalCode"))) if part)
    city_line = ", ".join(part for part in (city, region) if part)
    if not street or not city_line:
        text = _text(address.get("text"))
        return [*([name] if name else []), *text.splitlines()] if text else []
    lines = [*([name] if name else []), *street, city_line]
    if not domestic:
        lines.append(country.upper())
    return lines


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
