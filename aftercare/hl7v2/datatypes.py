"""v2 data types to FHIR elements: DTM to dateTime or date, CX to Identifier, XPN, XAD, XTN, CWE.

Conventions of the HL7 v2-to-FHIR mapping IG: CX.4 (the assigning authority) becomes the identifier
system (`urn:oid:` for an ISO OID, otherwise a URI naming the authority), CX.5 its type in table 0203;
coded values keep their v2 table as the system (`http://terminology.hl7.org/CodeSystem/v2-0069`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from aftercare.hl7v2.messages import unmappable

AUTHORITY_SYSTEM = "urn:aftercare:hl7v2:authority:"
V2_TABLE = "http://terminology.hl7.org/CodeSystem/v2-"
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")
_CODING_SYSTEMS = {
    "I10": "http://hl7.org/fhir/sid/icd-10-cm",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "LN": "http://loinc.org",
    "ISO639": "urn:ietf:bcp:47",
}


def date_time(value: str, location: str, zone: tzinfo) -> str | None:
    """A DTM as a FHIR dateTime: a date alone, or an instant with its offset (else the hospital's)."""
    if not value:
        return None
    match = _DTM.match(value)
    if match is None:
        raise unmappable(location, f"{value!r} is not an HL7 date/time (YYYY[MM[DD[HHMM[SS]]]][+ZZZZ])")
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        if hour is None:
            datetime(int(year), int(month or 1), int(day or 1))
            return "-".join(part for part in (year, month, day) if part)
        moment = datetime(
            int(year), int(month or 1), int(day or 1), int(hour), int(minute or 0), int(second or 0)
        )
    except ValueError as error:
        raise unmappable(location, f"{value!r} is not a valid date: {error}") from error
    if offset:
        sign = 1 if offset[0] == "+" else -1
        zone_of = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return moment.replace(tzinfo=zone_of).isoformat()
    return moment.replace(tzinfo=zone).isoformat()


def date_only(value: str, location: str) -> str | None:
    """A DTM as a FHIR date (a birth date)."""
    if not value:
        return None
    converted = date_time(value, location, UTC)
    return converted[:10] if converted and "T" in converted else converted


def system_of_authority(authority: str, universal_id: str = "", id_type: str = "") -> str:
    """CX.4 as a system: `urn:oid:` for an ISO OID, the URI itself for a URI, else a named authority."""
    if universal_id and id_type.upper() == "ISO":
        return f"urn:oid:{universal_id}"
    if universal_id and id_type.upper() in ("URI", "URL"):
        return universal_id
    return AUTHORITY_SYSTEM + (authority or universal_id or "unknown")


def identifier(components: list[str]) -> dict[str, Any]:
    """CX: value CX.1, system from CX.4 (HD: namespace&universal id&type), type from CX.5 (table 0203)."""
    value = components[0] if components else ""
    authority = (components[3] if len(components) > 3 else "").split("&")
    namespace, universal, id_type = ([*authority, "", "", ""])[:3]
    result: dict[str, Any] = {"system": system_of_authority(namespace, universal, id_type), "value": value}
    if len(components) > 4 and components[4]:
        result["type"] = {"coding": [{"system": V2_TABLE + "0203", "code": components[4]}]}
    return result


def coding(components: list[str], table: str | None = None) -> dict[str, Any] | None:
    """CWE: code CWE.1, display CWE.2, system from CWE.3 (or the v2 table the field is bound to)."""
    if not components or not components[0]:
        return None
    found: dict[str, Any] = {"code": components[0]}
    named = components[2] if len(components) > 2 else ""
    system = _CODING_SYSTEMS.get(named.upper()) if named else None
    if system is None and table is not None:
        system = V2_TABLE + table
    if system is None and named:
        system = AUTHORITY_SYSTEM + named
    if system:
        found["system"] = system
    if len(components) > 1 and components[1]:
        found["display"] = components[1]
    return found


def concept(components: list[str], table: str | None = None) -> dict[str, Any] | None:
    """CWE as a CodeableConcept (with its text)."""
    found = coding(components, table)
    if found is None:
        text = components[1] if len(components) > 1 else ""
        return {"text": text} if text else None
    result: dict[str, Any] = {"coding": [found]}
    if "display" in found:
        result["text"] = found["display"]
    return result


def human_name(components: list[str]) -> dict[str, Any] | None:
    """XPN: family XPN.1, given XPN.2 and XPN.3, prefix XPN.5, suffix XPN.4; use from XPN.7."""
    padded = (components + [""] * 7)[:7]
    family, given, middle, suffix, prefix, _, kind = padded
    if not (family or given):
        return None
    name: dict[str, Any] = {}
    name["use"] = {"L": "official", "D": "usual", "M": "maiden", "A": "anonymous", "N": "nickname"}.get(
        kind, "official"
    )
    if family:
        name["family"] = family
    givens = [part for part in (given, middle) if part]
    if givens:
        name["given"] = givens
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = [suffix]
    return name


def address(components: list[str]) -> dict[str, Any] | None:
    """XAD: lines XAD.1-2, city, state, postal code, country; use from XAD.7 (H home, B work)."""
    padded = (components + [""] * 7)[:7]
    line1, line2, city, state, postal, country, kind = padded
    found: dict[str, Any] = {}
    lines = [line for line in (line1, line2) if line]
    if lines:
        found["line"] = lines
    for key, value in (("city", city), ("state", state), ("postalCode", postal), ("country", country)):
        if value:
            found[key] = value
    if not found:
        return None
    use = {"H": "home", "B": "work", "O": "work", "C": "temp", "M": "home"}.get(kind)
    if use:
        found["use"] = use
    return found


def contact_point(components: list[str], default_use: str) -> dict[str, Any] | None:
    """XTN: email from XTN.4, else a number from XTN.5-7 (or XTN.1); XTN.2 use, XTN.3 equipment."""
    padded = (components + [""] * 12)[:12]
    unformatted, use_code, equipment, email, country, area, local, extension = padded[:8]
    if email or equipment.upper() in ("INTERNET", "X.400"):
        value = email or unformatted
        return {"system": "email", "value": value, "use": default_use} if value else None
    if local:
        number = (f"+{country.lstrip('+')}" if country else "") + area + local
        if extension:
            number += f" ext {extension}"
    else:
        number = unformatted
    if not number:
        return None
    system = "fax" if equipment.upper() == "FX" else "pager" if equipment.upper() == "BP" else "phone"
    use = "mobile" if equipment.upper() == "CP" or use_code == "PRS" else default_use
    if use_code == "WPN":
        use = "work"
    return {"system": system, "value": number, "use": use}
