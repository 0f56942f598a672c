"""Which Encounters are inpatient discharges, and what the risk scores read from an Encounter (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aftercare.clinical.facts import fhir_datetime

INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC", "OBSENC"})
EMERGENCY_CLASSES = frozenset({"EMER"})
URGENT_PRIORITIES = frozenset({"EM", "UR"})


@dataclass(frozen=True)
class Visit:
    """An Encounter as the scores read it."""

    reference: str
    class_code: str | None
    status: str | None
    start: datetime | None
    end: datetime | None
    priority: str | None = None
    admit_source: str | None = None
    services: tuple[str, ...] = ()  # `Encounter.serviceType`: code tokens and text, lower-cased

    @property
    def is_discharge(self) -> bool:
        """A finished inpatient stay with an admission and a discharge time."""
        return (
            self.class_code in INPATIENT_CLASSES
            and self.status == "finished"
            and self.start is not None
            and self.end is not None
        )

    def period(self) -> tuple[datetime, datetime]:
        """Admission and discharge; ValueError for a visit without both."""
        if self.start is None or self.end is None:
            raise ValueError(f"{self.reference} has no admission and discharge time")
        return self.start, self.end

    @property
    def is_emergency(self) -> bool:
        """An emergency department visit (class EMER) that started."""
        return self.class_code in EMERGENCY_CLASSES and self.start is not None and self.status != "cancelled"


def visit_of(encounter: dict[str, Any]) -> Visit:
    """The parts of an Encounter resource the scores read."""
    period = _dict(encounter.get("period"))
    return Visit(
        reference=f"Encounter/{encounter.get('id')}",
        class_code=_code(encounter.get("class")),
        status=encounter.get("status") if isinstance(encounter.get("status"), str) else None,
        start=fhir_datetime(period.get("start")),
        end=fhir_datetime(period.get("end")),
        priority=_code(encounter.get("priority")),
        admit_source=_code(_dict(encounter.get("hospitalization")).get("admitSource")),
        services=_service_words(encounter.get("serviceType")),
    )


def _service_words(concept: Any) -> tuple[str, ...]:
    concept = _dict(concept)
    words = [str(concept["text"]).lower()] if isinstance(concept.get("text"), str) else []
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict):
            words += [
                str(coding.get(key)).lower()
                for key in ("code", "display")
                if isinstance(coding.get(key), str)
            ]
    return tuple(words)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _code(value: Any) -> str | None:
    """The first code of a Coding, a CodeableConcept or (R5's class) a list of them."""
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, dict)), {})
    value = _dict(value)
    codings = value.get("coding") if "coding" in value else [value]
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None
