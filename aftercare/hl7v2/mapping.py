"""ADT messages to FHIR R4 resources, as `aftercare/hl7v2/MAPPING.md` tabulates field by field.

The result is plain JSON the FHIR ingest path stores and triggers on, exactly as if the hospital had
sent the resources. Ids are derived from the identifiers the message carries (the patient's PID-3, the
visit number PV1-19), so every message about one visit updates one Encounter, and the content holds
nothing that changes between two deliveries of one message: a resend is the same resource version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from aftercare.hl7v2 import datatypes as dt
from aftercare.hl7v2.messages import SUPPORTED_EVENTS, SUPPORTED_VERSIONS, V2Message, V2Problem, unmappable

_ENCOUNTER_CLASS = {
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"),
    "B": ("AMB", "ambulatory"),
    "C": ("AMB", "ambulatory"),
    "N": ("AMB", "ambulatory"),
}
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
_EVENT_STATUS = {
    "A01": "in-progress",
    "A02": "in-progress",
    "A04": "arrived",
    "A03": "finished",
    "A11": "cancelled",
    "A13": "in-progress",
}


@dataclass(frozen=True)
class MappedMessage:
    """What an ADT message says, as FHIR: the patient, the visit, its diagnoses, and for an A40 the
    identifiers of the record merged away."""

    event: str
    patient: dict[str, Any]
    encounter: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    merged_identifiers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resources(self) -> list[dict[str, Any]]:
        """Patient first, so that the store knows the patient of the Encounter and Conditions."""
        return [self.patient, *([self.encounter] if self.encounter else []), *self.conditions]


def check_supported(message: V2Message) -> None:
    """`AR` for what Aftercare does not take: another message type, event or version."""
    header = message.header
    if not header.control_id:
        raise V2Problem("AR", "MSH-10", "101", "the message has no control id")
    if header.version not in SUPPORTED_VERSIONS:
        raise V2Problem("AR", "MSH-12", "203", f"version {header.version!r} is not supported")
    if header.message_code != "ADT":
        raise V2Problem("AR", "MSH-9", "200", f"message type {header.message_code!r} is not supported")
    if event_of(message) not in SUPPORTED_EVENTS:
        raise V2Problem("AR", "MSH-9", "201", f"event {event_of(message)!r} is not supported")


def event_of(message: V2Message) -> str:
    """MSH-9.2, else EVN-1."""
    return message.header.event or message.value("EVN", 1)


def patient_identifiers(message: V2Message) -> list[dict[str, Any]]:
    """PID-3 as FHIR identifiers; `AE` naming PID-3 when there is none."""
    return _identifiers(message, "PID", 3, "the patient identifier list is empty")


def patient_id_for(identifiers: list[dict[str, Any]]) -> str:
    """The id of a record first seen by ADT: derived from its first identifier."""
    first = identifiers[0]
    return "v2-" + _digest(first["system"], first["value"])


def map_message(message: V2Message, *, zone: tzinfo, patient_id: str | None = None) -> MappedMessage:
    """The resources of a supported message; `patient_id` is the record its identifiers already name."""
    check_supported(message)
    message.check_segment_ids()
    event = event_of(message)
    identifiers = patient_identifiers(message)
    patient = map_patient(message, identifiers, patient_id or patient_id_for(identifiers), zone)
    if event == "A40":
        return MappedMessage(event, patient, merged_identifiers=_merged_identifiers(message))
    if not message.has("PV1"):
        raise unmappable("PV1", f"an {event} needs a PV1 segment", "100")
    encounter = map_encounter(message, event, patient, zone)
    conditions = [
        map_condition(message, index, patient, encounter, zone)
        for index in range(len(message.segments("DG1")))
    ]
    return MappedMessage(event, patient, encounter, [c for c in conditions if c is not None])


def map_patient(
    message: V2Message, identifiers: list[dict[str, Any]], patient_id: str, zone: tzinfo
) -> dict[str, Any]:
    """PID → Patient."""
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id, "identifier": identifiers}
    names = [name for item in message.repetitions("PID", 5) if (name := dt.human_name(item))]
    if names:
        patient["name"] = names
    birth = dt.date_only(message.value("PID", 7), "PID-7")
    if birth:
        patient["birthDate"] = birth
    sex = message.value("PID", 8)
    if sex:
        if sex not in _GENDER:
            raise unmappable("PID-8", f"administrative sex {sex!r} is not in table 0001", "103")
        patient["gender"] = _GENDER[sex]
    addresses = [found for item in message.repetitions("PID", 11) if (found := dt.address(item))]
    if addresses:
        patient["address"] = addresses
    telecom = [found for item in message.repetitions("PID", 13) if (found := dt.contact_point(item, "home"))]
    telecom += [found for item in message.repetitions("PID", 14) if (found := dt.contact_point(item, "work"))]
    if telecom:
        patient["telecom"] = telecom
    language = message.first("PID", 15)
    if language and language[0]:
        patient["communication"] = [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": language[0].lower()}],
                    **({"text": language[1]} if len(language) > 1 and language[1] else {}),
                },
                "preferred": True,
            }
        ]
    died = dt.date_time(message.value("PID", 29), "PID-29", zone)
    if died:
        patient["deceasedDateTime"] = died
    elif message.value("PID", 30) == "Y":
        patient["deceasedBoolean"] = True
    return patient


def map_encounter(message: V2Message, event: str, patient: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    """PV1/PV2 → Encounter; the status from the event (an A08 from whether PV1-45 is set)."""
    patient_class = message.value("PV1", 2)
    if patient_class not in _ENCOUNTER_CLASS:
        raise unmappable("PV1-2", f"patient class {patient_class!r} is not in table 0004", "103")
    code, display = _ENCOUNTER_CLASS[patient_class]
    start = dt.date_time(message.value("PV1", 44), "PV1-44", zone)
    end = dt.date_time(message.value("PV1", 45), "PV1-45", zone)
    if event == "A03" and end is None:
        raise unmappable("PV1-45", "an A03 discharge needs the discharge date/time", "101")
    status = _EVENT_STATUS.get(event) or ("finished" if end else "in-progress")
    visit = message.first("PV1", 19)
    visit_components = message.repetitions("PV1", 19, subcomponents=True)
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": _ACT_CODE, "code": code, "display": display},
        "subject": {"reference": f"Patient/{patient['id']}"},
    }
    if visit and visit[0]:
        number = dt.identifier(visit_components[0])
        number["type"] = {"coding": [{"system": dt.V2_TABLE + "0203", "code": "VN"}]}
        encounter["identifier"] = [number]
        encounter["id"] = "v2-" + _digest(number["system"], number["value"])
    else:
        encounter["id"] = "v2-" + _digest(patient["id"], start or message.header.control_id)
    period = {
        key: value
        for key, value in (("start", start), ("end", end if status == "finished" else None))
        if value
    }
    if period:
        encounter["period"] = period
    service = dt.concept(message.first("PV1", 10), "0069")
    if service:
        encounter["serviceType"] = service
    hospitalization: dict[str, Any] = {}
    admit_source = dt.concept(message.first("PV1", 14), "0023")
    if admit_source:
        hospitalization["admitSource"] = admit_source
    disposition = dt.concept(message.first("PV1", 36), "0112")
    if disposition and status == "finished":
        hospitalization["dischargeDisposition"] = disposition
    if hospitalization:
        encounter["hospitalization"] = hospitalization
    attending = [_practitioner(item) for item in message.repetitions("PV1", 7)]
    if attending:
        encounter["participant"] = [
            {"type": [{"coding": [{"system": _PARTICIPATION, "code": "ATND"}]}], "individual": who}
            for who in attending
        ]
    location = message.first("PV1", 3)
    if location and any(location[:3]):
        encounter["location"] = [{"location": {"display": " ".join(part for part in location[:4] if part)}}]
    reason = dt.concept(message.first("PV2", 3)) if message.has("PV2") else None
    if reason:
        encounter["reasonCode"] = [reason]
    return encounter


def map_condition(
    message: V2Message, index: int, patient: dict[str, Any], encounter: dict[str, Any], zone: tzinfo
) -> dict[str, Any] | None:
    """DG1 → Condition, an encounter diagnosis of the visit."""
    code = dt.concept(message.first("DG1", 3, index), None)
    if code is None:
        return None
    kind = message.value("DG1", 6, index=index)
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "v2-"
        + _digest(
            encounter["id"], *(c.get("code", "") for c in code.get("coding", [])), code.get("text", "")
        ),
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "verificationStatus": {
            "coding": [{"system": _VERIFICATION, "code": "confirmed" if kind == "F" else "provisional"}]
        },
        "category": [{"coding": [{"system": _CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": code,
        "subject": {"reference": f"Patient/{patient['id']}"},
        "encounter": {"reference": f"Encounter/{encounter['id']}"},
    }
    recorded = dt.date_time(message.value("DG1", 5, index=index), f"DG1-5 (DG1 {index + 1})", zone)
    if recorded:
        condition["recordedDate"] = recorded
    return condition


def _merged_identifiers(message: V2Message) -> list[dict[str, Any]]:
    return _identifiers(message, "MRG", 1, "the prior patient identifier list is empty")


def _identifiers(message: V2Message, segment: str, field: int, empty: str) -> list[dict[str, Any]]:
    if not message.has(segment):
        raise unmappable(segment, f"the message has no {segment} segment", "100")
    found = [
        dt.identifier(item)
        for item in message.repetitions(segment, field, subcomponents=True)
        if item and item[0]
    ]
    if not found:
        raise unmappable(f"{segment}-{field}", empty, "101")
    return found


def _practitioner(components: list[str]) -> dict[str, Any]:
    """XCN as a reference by identifier and display (Aftercare keeps no Practitioner resources)."""
    padded = (components + [""] * 6)[:6]
    number, family, given, middle, _, prefix = padded
    display = " ".join(part for part in (prefix, given, middle, family) if part)
    reference: dict[str, Any] = {"type": "Practitioner"}
    if number:
        reference["identifier"] = {"system": dt.AUTHORITY_SYSTEM + "practitioner", "value": number}
    if display:
        reference["display"] = display
    return reference


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
