"""Reading references: which patient a resource is about."""

from __future__ import annotations

from typing import Any

# Where each resource type names its patient, when it is not `subject` or `patient`.
_PATIENT_ELEMENTS = ("subject", "patient", "beneficiary")


def reference_target(reference: str | None) -> tuple[str, str] | None:
    """(`type`, `id`) of a literal reference: `Patient/1`, `http://x/fhir/Patient/1/_history/2`."""
    if not reference or reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def patient_id_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource is about: the Patient itself, its `subject` or `patient`."""
    if resource.get("resourceType") == "Patient":
        identifier = resource.get("id")
        return identifier if isinstance(identifier, str) else None
    for element in _PATIENT_ELEMENTS:
        value = resource.get(element)
        if isinstance(value, dict):
            target = reference_target(value.get("reference"))
            if target and target[0] == "Patient":
                return target[1]
    for participant in resource.get("participant") or []:
        actor = participant.get("actor") if isinstance(participant, dict) else None
        if isinstance(actor, dict):
            target = reference_target(actor.get("reference"))
            if target and target[0] == "Patient":
                return target[1]
    return None
