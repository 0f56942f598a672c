"""From a FHIR resource to the rows of its clinical fact table (pure: no I/O).

Codes are tokens `system|code`, one per coding of the concept (`|code` for a coding without a system).
Dates, dateTimes and instants become timezone-aware datetimes: a partial or date-only value is the
start of that period at midnight UTC, a time without an offset is taken as UTC.

An Observation made of components (a blood pressure panel) keeps its own row, and each coded component
also gets a row of its own, with the panel's patient, status, categories, time and encounter, so that
"the latest systolic pressure" is the same query as "the latest HbA1c". A component row's id is
`{observation id}#component-{code}` (`code` is the component's first code); when that would not fit
the 64-character id, `{observation id}#{hash of that suffix}` is used, and an Observation whose id
leaves no room for either keeps only its panel row. Ids with `#` are never FHIR ids, so component
rows cannot collide with resources.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aftercare.fhir.references import patient_id_of, reference_target

# The resource types kept as clinical facts, and their tables.
FACT_TABLES: Mapping[str, str] = {
    "Condition": "clinical_conditions",
    "Observation": "clinical_observations",
    "MedicationRequest": "clinical_medications",
    "Encounter": "clinical_encounters",
    "AllergyIntolerance": "clinical_allergies",
    "Procedure": "clinical_procedures",
    "Appointment": "clinical_appointments",
    "EpisodeOfCare": "clinical_episodes",
    "Immunization": "clinical_immunizations",
}
# Resources other facts refer to and read codes from, when they arrive in the same batch.
REFERENCED_TYPES = frozenset({"Medication", "Condition"})

COMPONENT_SEPARATOR = "#"
_ID_LENGTH = 64
_TOKEN_LENGTH = 300
_DISPLAY_LENGTH = 500
_STATUS_LENGTH = 32
_UNIT_LENGTH = 64
_CATEGORY_LENGTH = 64

References = Mapping[str, dict[str, Any]]
"""Resources of the same batch by `Type/id`, for references that can be resolved without a query."""


@dataclass(frozen=True)
class Fact:
    """One row for one fact table."""

    table: str
    row: dict[str, Any]


def facts_of(resource: dict[str, Any], references: References | None = None) -> list[Fact]:
    """The fact rows of a resource: none for types not kept or resources that name no patient."""
    row = fact_row(resource, references)
    if row is None:
        return []
    table = FACT_TABLES[resource["resourceType"]]
    facts = [Fact(table, row)]
    if resource["resourceType"] == "Observation":
        facts.extend(Fact(table, component) for component in component_rows(resource, row))
    return facts


def fact_row(resource: dict[str, Any], references: References | None = None) -> dict[str, Any] | None:
    """The row of a resource in its fact table, or None for a type not kept, a resource without a
    patient, or one recorded in error (its row, if any, is then removed)."""
    build = _BUILDERS.get(resource.get("resourceType", ""))
    patient_id = patient_id_of(resource)
    identifier = resource.get("id")
    if build is None or patient_id is None or not isinstance(identifier, str) or entered_in_error(resource):
        return None
    return build(resource, {"resource_id": identifier, "patient_id": patient_id}, references or {})


def entered_in_error(resource: dict[str, Any]) -> bool:
    """Whether the resource says it was recorded in error (`status`, or `verificationStatus` of a
    Condition or AllergyIntolerance): such a resource is not a fact."""
    return (
        resource.get("status") == "entered-in-error"
        or _status_code(resource.get("verificationStatus")) == "entered-in-error"
    )


def component_rows(observation: dict[str, Any], panel: dict[str, Any]) -> list[dict[str, Any]]:
    """A row per coded component of an Observation, sharing the panel's context (see the module doc)."""
    rows: dict[str, dict[str, Any]] = {}
    for component in _dicts(observation.get("component")):
        concept = _dict(component.get("code"))
        codes = tokens(concept)
        if not codes:
            continue
        resource_id = component_id(panel["resource_id"], codes[0].partition("|")[2])
        if resource_id is None:
            continue
        rows[resource_id] = {
            **panel,
            "resource_id": resource_id,
            "codes": codes,
            "display": display_of(concept),
            **observation_value(component),
            "interpretations": _tokens_of_all(component.get("interpretation")),
        }
    return list(rows.values())


def component_id(observation_id: str, code: str) -> str | None:
    """The id of a component row (see the module doc); None when the observation id leaves no room."""
    suffix = f"component-{code}"
    candidate = f"{observation_id}{COMPONENT_SEPARATOR}{suffix}"
    if len(candidate) <= _ID_LENGTH:
        return candidate
    room = _ID_LENGTH - len(observation_id) - len(COMPONENT_SEPARATOR)
    if room < 8:
        return None
    digest = hashlib.sha256(suffix.encode()).hexdigest()[:room]
    return f"{observation_id}{COMPONENT_SEPARATOR}{digest}"


# --- values -----------------------------------------------------------------------------------------


def tokens(concept: Any) -> list[str]:
    """`system|code` for every coding of a CodeableConcept (or of a single Coding), without repeats."""
    concept = _dict(concept)
    codings = _dicts(concept.get("coding")) if "coding" in concept else [concept]
    found: list[str] = []
    for coding in codings:
        code = coding.get("code")
        if not isinstance(code, str) or not code:
            continue
        system = coding.get("system") if isinstance(coding.get("system"), str) else ""
        token = f"{system}|{code}"[:_TOKEN_LENGTH]
        if token not in found:
            found.append(token)
    return found


def display_of(concept: Any) -> str | None:
    """A concept's text, else the display of its first coding that has one."""
    concept = _dict(concept)
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()[:_DISPLAY_LENGTH]
    for coding in _dicts(concept.get("coding")) if "coding" in concept else [concept]:
        display = coding.get("display")
        if isinstance(display, str) and display.strip():
            return display.strip()[:_DISPLAY_LENGTH]
    return None


def fhir_datetime(value: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (see the module doc); None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def observation_value(element: dict[str, Any]) -> dict[str, Any]:
    """`value[x]` of an Observation or component as number and unit, a code token, or text.

    A coded value keeps its token in `value_code` and its label in `value_text`.
    """
    value: dict[str, Any] = {"value_number": None, "value_unit": None, "value_code": None, "value_text": None}
    quantity = element.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        unit = quantity.get("unit") or quantity.get("code")
        value["value_number"] = float(quantity["value"])
        value["value_unit"] = unit[:_UNIT_LENGTH] if isinstance(unit, str) else None
    elif isinstance(element.get("valueInteger"), int) and not isinstance(element.get("valueInteger"), bool):
        value["value_number"] = float(element["valueInteger"])
    elif isinstance(element.get("valueCodeableConcept"), dict):
        concept = element["valueCodeableConcept"]
        codes = tokens(concept)
        value["value_code"] = codes[0] if codes else None
        value["value_text"] = display_of(concept)
    elif isinstance(element.get("valueString"), str):
        value["value_text"] = element["valueString"]
    elif isinstance(element.get("valueBoolean"), bool):
        value["value_text"] = "true" if element["valueBoolean"] else "false"
    else:
        for kind in ("valueDateTime", "valueTime"):
            if isinstance(element.get(kind), str):
                value["value_text"] = element[kind]
                break
    return value


# --- one builder per type ------------------------------------------------------------------------------


def _condition(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    return {
        **row,
        "codes": tokens(resource.get("code")),
        "display": display_of(resource.get("code")),
        "status": _status_code(resource.get("clinicalStatus")),
        "verification_status": _status_code(resource.get("verificationStatus")),
        "categories": _tokens_of_all(resource.get("category")),
        "onset_at": _moment(resource, "onset"),
        "abatement_at": _moment(resource, "abatement"),
        "recorded_at": fhir_datetime(resource.get("recordedDate")),
    }


def _observation(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    effective = _moment(resource, "effective")
    return {
        **row,
        "codes": tokens(resource.get("code")),
        "display": display_of(resource.get("code")),
        "status": _status(resource.get("status")),
        "categories": _tokens_of_all(resource.get("category")),
        "effective_at": effective if effective is not None else fhir_datetime(resource.get("issued")),
        **observation_value(resource),
        "interpretations": _tokens_of_all(resource.get("interpretation")),
        "encounter_id": _target_id(resource.get("encounter"), "Encounter"),
    }


def _medication_request(
    resource: dict[str, Any], row: dict[str, Any], references: References
) -> dict[str, Any]:
    concept = resource.get("medicationCodeableConcept")
    display = display_of(concept)
    reference = _dict(resource.get("medicationReference"))
    if concept is None and reference:
        medication = _referenced(resource, reference, "Medication", references)
        concept = medication.get("code") if medication else None
        display = display_of(concept) or _text(reference.get("display"), _DISPLAY_LENGTH)
    return {
        **row,
        "codes": tokens(concept),
        "display": display,
        "status": _status(resource.get("status")),
        "intent": _status(resource.get("intent")),
        "authored_at": fhir_datetime(resource.get("authoredOn")),
    }


def _encounter(resource: dict[str, Any], row: dict[str, Any], references: References) -> dict[str, Any]:
    types = _dicts(resource.get("type"))
    encounter_class = _class_coding(resource.get("class"))
    period = _dict(resource.get("period"))
    disposition = _dict(_dict(resource.get("hospitalization")).get("dischargeDisposition"))
    disposition_codes = tokens(disposition)
    diagnoses: list[str] = []
    for diagnosis in _dicts(resource.get("diagnosis")):
        condition = _referenced(resource, _dict(diagnosis.get("condition")), "Condition", references)
        diagnoses.extend(code for code in tokens(_dict(condition).get("code")) if code not in diagnoses)
    return {
        **row,
        "codes": [code for concept in types for code in tokens(concept)],
        "display": next((text for text in map(display_of, types) if text), None)
        or _text(encounter_class.get("display"), _DISPLAY_LENGTH),
        "status": _status(resource.get("status")),
        "class_code": _text(encounter_class.get("code"), _STATUS_LENGTH),
        "reason_codes": _tokens_of_all(resource.get("reasonCode")),
        "diagnosis_codes": diagnoses,
        "start_at": fhir_datetime(period.get("start")),
        "end_at": fhir_datetime(period.get("end")),
        "discharge_disposition": disposition_codes[0]
        if disposition_codes
        else _text(disposition.get("text"), _TOKEN_LENGTH),
    }


def _allergy(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    categories = resource.get("category")
    return {
        **row,
        "codes": tokens(resource.get("code")),
        "display": display_of(resource.get("code")),
        "status": _status_code(resource.get("clinicalStatus")),
        "verification_status": _status_code(resource.get("verificationStatus")),
        "criticality": _status(resource.get("criticality")),
        "categories": [c[:_CATEGORY_LENGTH] for c in categories if isinstance(c, str)]
        if isinstance(categories, list)
        else [],
        "recorded_at": fhir_datetime(resource.get("recordedDate")),
    }


def _procedure(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    period = _dict(resource.get("performedPeriod"))
    start = fhir_datetime(resource.get("performedDateTime")) or fhir_datetime(period.get("start"))
    return {
        **row,
        "codes": tokens(resource.get("code")),
        "display": display_of(resource.get("code")),
        "status": _status(resource.get("status")),
        "performed_at": start,
        "performed_end_at": fhir_datetime(period.get("end")),
    }


def _appointment(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    services = _dicts(resource.get("serviceType"))
    description = _text(resource.get("description"), _DISPLAY_LENGTH)
    return {
        **row,
        "codes": [code for concept in services for code in tokens(concept)],
        "display": description
        or next((text for text in map(display_of, services) if text), None)
        or display_of(resource.get("appointmentType")),
        "status": _status(resource.get("status")),
        "start_at": fhir_datetime(resource.get("start")),
        "end_at": fhir_datetime(resource.get("end")),
    }


def _episode(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    types = _dicts(resource.get("type"))
    period = _dict(resource.get("period"))
    return {
        **row,
        "codes": [code for concept in types for code in tokens(concept)],
        "display": next((text for text in map(display_of, types) if text), None),
        "status": _status(resource.get("status")),
        "start_at": fhir_datetime(period.get("start")),
        "end_at": fhir_datetime(period.get("end")),
    }


def _immunization(resource: dict[str, Any], row: dict[str, Any], _: References) -> dict[str, Any]:
    return {
        **row,
        "codes": tokens(resource.get("vaccineCode")),
        "display": display_of(resource.get("vaccineCode")),
        "status": _status(resource.get("status")),
        "occurred_at": fhir_datetime(resource.get("occurrenceDateTime")),
    }


_BUILDERS = {
    "Condition": _condition,
    "Observation": _observation,
    "MedicationRequest": _medication_request,
    "Encounter": _encounter,
    "AllergyIntolerance": _allergy,
    "Procedure": _procedure,
    "Appointment": _appointment,
    "EpisodeOfCare": _episode,
    "Immunization": _immunization,
}


# --- small readers --------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any, length: int) -> str | None:
    return value[:length] if isinstance(value, str) and value else None


def _status(value: Any) -> str | None:
    return _text(value, _STATUS_LENGTH)


def _status_code(concept: Any) -> str | None:
    """The code of a status concept (`clinicalStatus`, `verificationStatus`)."""
    for coding in _dicts(_dict(concept).get("coding")):
        if isinstance(coding.get("code"), str):
            return _status(coding["code"])
    return None


def _tokens_of_all(concepts: Any) -> list[str]:
    found: list[str] = []
    for concept in _dicts(concepts):
        found.extend(token for token in tokens(concept) if token not in found)
    return found


def _moment(resource: dict[str, Any], element: str) -> datetime | None:
    """`{element}DateTime`, `{element}Instant` or the start of `{element}Period`."""
    for suffix in ("DateTime", "Instant"):
        moment = fhir_datetime(resource.get(f"{element}{suffix}"))
        if moment is not None:
            return moment
    return fhir_datetime(_dict(resource.get(f"{element}Period")).get("start"))


def _class_coding(value: Any) -> dict[str, Any]:
    """R4's `Encounter.class` Coding (R5 has a list of CodeableConcepts: their first coding)."""
    if isinstance(value, list):
        concept = next(iter(_dicts(value)), {})
        return next(iter(_dicts(concept.get("coding"))), {})
    return _dict(value)


def _target_id(reference: Any, resource_type: str) -> str | None:
    target = reference_target(_dict(reference).get("reference"))
    return target[1] if target and target[0] == resource_type else None


def _referenced(
    resource: dict[str, Any], reference: dict[str, Any], resource_type: str, references: References
) -> dict[str, Any] | None:
    """A contained resource (`#id`) or one of the same batch."""
    literal = reference.get("reference")
    if not isinstance(literal, str):
        return None
    if literal.startswith("#"):
        return next(
            (
                item
                for item in _dicts(resource.get("contained"))
                if item.get("resourceType") == resource_type and item.get("id") == literal[1:]
            ),
            None,
        )
    target = reference_target(literal)
    if target is None or target[0] != resource_type:
        return None
    return references.get(f"{target[0]}/{target[1]}")
