"""Synthetic patients for campaign tests and benchmarks: FHIR `Patient` resources with names, phones,
emails, time zones (the standard `timezone` extension) and birth dates, stored through the product's
ingestion path."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.resources import store_resources

TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"


def synthetic_patient(
    index: int,
    *,
    zone: str | None = "America/New_York",
    phone: bool = True,
    email: bool = False,
    deceased: bool = False,
    language: str = "en",
    birth_date: str = "1960-05-17",
) -> dict[str, Any]:
    """Patient `cp-<index>`: `Pat<index> Campaign`, a 555 phone number (Synthea's style), optionally an
    email address, in `zone`."""
    telecom: list[dict[str, Any]] = []
    if phone:
        telecom.append(
            {
                "system": "phone",
                "value": f"555-{100 + index // 10000:03d}-{index % 10000:04d}",
                "use": "mobile",
            }
        )
    if email:
        telecom.append({"system": "email", "value": f"pat{index}@example.org", "use": "home"})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"cp-{index}",
        "meta": {"versionId": "1"},
        "name": [{"given": [f"Pat{index}"], "family": "Campaign"}],
        "gender": "female" if index % 2 else "male",
        "birthDate": birth_date,
        "telecom": telecom,
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}}],
        "address": [
            {"line": [f"{index} Main St"], "city": "Springfield", "state": "MA", "postalCode": "01101"}
        ],
    }
    if zone is not None:
        patient["extension"] = [{"url": TIMEZONE_EXTENSION, "valueCode": zone}]
    if deceased:
        patient["deceasedBoolean"] = True
    return patient


async def store_patients(
    sessions: async_sessionmaker[AsyncSession], patients: list[dict[str, Any]]
) -> list[str]:
    """Store the patients (no journeys fire); returns their ids."""
    async with sessions.begin() as session:
        await store_resources(session, patients, source="test", phone_region="US", fire_triggers=False)
    return [patient["id"] for patient in patients]
