"""The mapping from a FHIR `Patient` to the patient profile that templates and channels use."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from aftercare.fhir.phones import PhoneStatus, normalise_phone
from models.zones import known_zone

TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
_NAME_USE_RANK = {"usual": 0, "official": 1, None: 2, "temp": 3, "nickname": 4, "anonymous": 5, "maiden": 6}
_PHONE_USE_RANK = {"mobile": 0, None: 1, "home": 2, "work": 3, "temp": 4}


@dataclass(frozen=True)
class PatientProfile:
    """What outreach needs to know about a patient, taken from the current `Patient` resource."""

    id: str
    version_id: str
    name: str | None
    given: str | None
    family: str | None
    birth_date: date | None
    gender: str | None
    phone: str | None
    phone_raw: str | None
    phone_status: PhoneStatus
    email: str | None
    language: str | None
    timezone: str | None
    deceased: bool
    address: dict[str, Any] | None
    preferred_channel: str | None

    def as_row(self) -> dict[str, Any]:
        """Column values for the `patients` table."""
        return asdict(self)


def profile_from_patient(resource: dict[str, Any], version_id: str, phone_region: str) -> PatientProfile:
    """Build the profile; a phone number that cannot be normalised is kept raw and flagged."""
    name = _preferred_name(resource.get("name") or [])
    given_names = [part for part in (name.get("given") or []) if isinstance(part, str)]
    family = name.get("family") if isinstance(name.get("family"), str) else None
    full_name = name.get("text") or " ".join([*given_names, family or ""]).strip() or None
    phone_raw = _preferred_phone(resource.get("telecom") or [])
    phone = normalise_phone(phone_raw, phone_region)
    return PatientProfile(
        id=resource["id"],
        version_id=version_id,
        name=full_name,
        given=given_names[0] if given_names else None,
        family=family,
        birth_date=_date(resource.get("birthDate")),
        gender=resource.get("gender"),
        phone=phone.e164,
        phone_raw=phone_raw,
        phone_status=phone.status,
        email=_preferred_email(resource.get("telecom") or []),
        language=_preferred_language(resource.get("communication") or []),
        timezone=_timezone(resource),
        deceased=bool(resource.get("deceasedBoolean")) or "deceasedDateTime" in resource,
        address=_home_address(resource.get("address") or []),
        preferred_channel=_preferred_channel(resource.get("telecom") or []),
    )


def _current(items: list[Any]) -> list[dict[str, Any]]:
    return [
        item
        for item in items
        if isinstance(item, dict) and item.get("use") != "old" and not (item.get("period") or {}).get("end")
    ]


def _preferred_name(names: list[Any]) -> dict[str, Any]:
    candidates = _current(names) or [name for name in names if isinstance(name, dict)]
    if not candidates:
        return {}
    return min(candidates, key=lambda name: _NAME_USE_RANK.get(name.get("use"), 9))


def _preferred_phone(telecom: list[Any]) -> str | None:
    phones = [
        point
        for point in _current(telecom)
        if point.get("system") in ("sms", "phone") and isinstance(point.get("value"), str)
    ]
    if not phones:
        return None
    best = min(
        phones,
        key=lambda point: (
            0 if point.get("system") == "sms" else 1,
            _PHONE_USE_RANK.get(point.get("use"), 9),
            point.get("rank") or 99,
        ),
    )
    value: str = best["value"]
    return value


def _preferred_email(telecom: list[Any]) -> str | None:
    emails = [
        point
        for point in _current(telecom)
        if point.get("system") == "email" and isinstance(point.get("value"), str) and "@" in point["value"]
    ]
    if not emails:
        return None
    value: str = min(emails, key=lambda point: point.get("rank") or 99)["value"]
    return value.strip()


_CHANNEL_OF_TELECOM = {"sms": "sms", "phone": "sms", "email": "email"}


def _preferred_channel(telecom: list[Any]) -> str | None:
    """The channel of the contact point the patient ranked first (`ContactPoint.rank`), if any."""
    ranked = [
        point
        for point in _current(telecom)
        if isinstance(point.get("rank"), int) and point.get("system") in _CHANNEL_OF_TELECOM
    ]
    if not ranked:
        return None
    return _CHANNEL_OF_TELECOM[min(ranked, key=lambda point: point["rank"])["system"]]


def _preferred_language(communication: list[Any]) -> str | None:
    entries = [item for item in communication if isinstance(item, dict)]
    entries.sort(key=lambda item: 0 if item.get("preferred") else 1)
    for item in entries:
        language = item.get("language") or {}
        for coding in language.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                code: str = coding["code"]
                return code
    return None


def _timezone(resource: dict[str, Any]) -> str | None:
    """The IANA zone from the standard `timezone` extension, on the Patient or its home address."""
    holders = [resource, *[address for address in resource.get("address") or [] if isinstance(address, dict)]]
    for holder in holders:
        for extension in holder.get("extension") or []:
            if isinstance(extension, dict) and extension.get("url") == TIMEZONE_EXTENSION:
                zone = extension.get("valueCode")
                if isinstance(zone, str) and known_zone(zone):
                    return zone
    return None


def _home_address(addresses: list[Any]) -> dict[str, Any] | None:
    current = _current(addresses)
    if not current:
        return None
    home = [address for address in current if address.get("use") in ("home", None)]
    chosen = (home or current)[0]
    return {key: value for key, value in chosen.items() if key != "extension"}


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10]) if len(value) >= 10 else None
    except ValueError:
        return None
