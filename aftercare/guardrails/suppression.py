"""Patients who are never messaged: the deceased, and minors with no guardian to contact."""

from __future__ import annotations

from datetime import date
from typing import Any

from aftercare.guardrails.decision import Decision
from models.tables import Patient

# Patient.contact.relationship codes (v2-0131 and v3 RoleCode) that make a contact a guardian.
GUARDIAN_CODES = frozenset({"GUARD", "PRN", "MTH", "FTH", "PAR", "parent", "guardian", "N", "C"})


def age_on(birth_date: date, today: date) -> int:
    """Whole years from birth to `today`."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def has_guardian_contact(resource: dict[str, Any]) -> bool:
    """True when the Patient resource names a guardian or parent contact with a telecom."""
    for contact in resource.get("contact") or []:
        codes = {
            str(coding.get("code"))
            for relationship in contact.get("relationship") or []
            for coding in relationship.get("coding") or []
        }
        texts = {
            str(relationship.get("text", "")).lower() for relationship in contact.get("relationship") or []
        }
        if (codes & GUARDIAN_CODES or texts & {"guardian", "parent"}) and contact.get("telecom"):
            return True
    return False


def suppressed_patient(patient: Patient, has_guardian: bool, minor_age: int, today: date) -> Decision | None:
    """A `suppress` decision for a deceased patient or a minor without a guardian contact, else None."""
    if patient.deceased:
        return Decision("suppress", "deceased", "the patient is deceased")
    minor = minor_age and patient.birth_date is not None and age_on(patient.birth_date, today) < minor_age
    if minor and not has_guardian:
        return Decision("suppress", "minor", f"the patient is under {minor_age} and has no guardian contact")
    return None
