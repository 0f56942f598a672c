"""The HOSPITAL score of a discharge (Donzé J, Aujesky D, Williams D, Schnipper JL. "Potentially
avoidable 30-day hospital readmissions in medical patients: derivation and validation of a prediction
model", JAMA Intern Med 2013;173(8):632-638). Pure; scored only where its laboratory inputs exist.

- H, haemoglobin at discharge (the last before discharge during the stay, LOINC 718-7) < 12 g/dL: 1
- O, discharge from an oncology service (`Encounter.serviceType`): 2
- S, sodium at discharge (LOINC 2951-2 or 2947-0) < 135 mmol/L: 1
- P, a procedure performed during the stay: 1
- I, index admission non-elective (as LACE's A): 1
- T, admissions in the 12 months before: 0-1 → 0, 2-5 → 2, more than 5 → 5
- A, length of stay of 5 days or more: 2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from aftercare.risk.discharges import INPATIENT_CLASSES, Visit
from aftercare.risk.lace import admission_acuity, months_before, stay_days
from aftercare.risk.scores import Component, Score

ALGORITHM = "hospital-donze-2013/1"
HAEMOGLOBIN = frozenset({"http://loinc.org|718-7"})
SODIUM = frozenset({"http://loinc.org|2951-2", "http://loinc.org|2947-0"})
ONCOLOGY_SERVICES = frozenset({"394593009", "394592004", "418002000"})  # SNOMED CT oncology specialties


@dataclass(frozen=True)
class Measurement:
    """A laboratory value: its reference, codes, number, unit and time."""

    reference: str
    codes: tuple[str, ...]
    value: float
    unit: str | None
    at: datetime


@dataclass(frozen=True)
class Performed:
    """A procedure and when it was performed."""

    reference: str
    at: datetime


def _at_discharge(
    stay: Visit, measurements: Sequence[Measurement], codes: frozenset[str]
) -> Measurement | None:
    start, end = stay.period()
    during = [m for m in measurements if codes & set(m.codes) and start <= m.at <= end]
    return max(during, key=lambda m: (m.at, m.reference)) if during else None


def haemoglobin_g_dl(measurement: Measurement) -> float:
    """Haemoglobin in g/dL (g/L is divided by ten)."""
    return measurement.value / 10 if (measurement.unit or "").lower() == "g/l" else measurement.value


def admissions_points(count: int) -> int:
    """T: 0-1 → 0, 2-5 → 2, more than 5 → 5."""
    return 0 if count <= 1 else 2 if count <= 5 else 5


def hospital(
    stay: Visit,
    visits: Sequence[Visit],
    measurements: Sequence[Measurement],
    procedures: Sequence[Performed],
    zone: ZoneInfo,
) -> Score | None:
    """The HOSPITAL score of a discharge, or None when its haemoglobin or sodium at discharge is unknown."""
    start, end = stay.period()
    haemoglobin = _at_discharge(stay, measurements, HAEMOGLOBIN)
    sodium = _at_discharge(stay, measurements, SODIUM)
    if haemoglobin is None or sodium is None:
        return None
    hb = haemoglobin_g_dl(haemoglobin)
    oncology = any(word in ONCOLOGY_SERVICES or "oncology" in word for word in stay.services)
    during = sorted((p for p in procedures if start <= p.at <= end), key=lambda p: (p.at, p.reference))
    since = months_before(start, 12)
    earlier = sorted(
        (
            v
            for v in visits
            if v.class_code in INPATIENT_CLASSES
            and v.reference != stay.reference
            and v.start is not None
            and since <= v.start < start
        ),
        key=lambda v: (v.start, v.reference),
    )
    days = stay_days(stay, zone)
    components = {
        "H": Component(round(hb, 2), 1 if hb < 12 else 0, [haemoglobin.reference]),
        "O": Component(oncology, 2 if oncology else 0, [stay.reference] if oncology else []),
        "S": Component(sodium.value, 1 if sodium.value < 135 else 0, [sodium.reference]),
        "P": Component(len(during), 1 if during else 0, [p.reference for p in during]),
        "I": admission_acuity(stay, visits, points=1),
        "T": Component(len(earlier), admissions_points(len(earlier)), [v.reference for v in earlier]),
        "A": Component(days, 2 if days >= 5 else 0, [stay.reference]),
    }
    return Score(
        score="hospital",
        algorithm=ALGORITHM,
        encounter_id=stay.reference.partition("/")[2],
        components=components,
    )
