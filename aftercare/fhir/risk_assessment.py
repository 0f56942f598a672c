"""A stored readmission risk score as a FHIR R4 `RiskAssessment` for the chart: the method (LACE or
HOSPITAL), the prediction (30-day readmission, with the band as `qualitativeRisk`), the basis (every
resource a component came from), and an identifier naming the discharge and the score
(`urn:aftercare:risk|<encounter>/<score>`), so writing it again updates the same resource."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

RISK_IDENTIFIER_SYSTEM = "urn:aftercare:risk"
_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
METHODS = {
    "lace": "LACE index (van Walraven et al., CMAJ 2010)",
    "hospital": "HOSPITAL score (Donzé et al., JAMA Intern Med 2013)",
}


@dataclass(frozen=True)
class ScoredDischarge:
    """What the RiskAssessment says: the discharge, the score, its band and components."""

    patient_id: str
    encounter_id: str
    score: str
    value: int
    band: str
    as_of: datetime
    components: dict[str, Any]


def risk_assessment(scored: ScoredDischarge) -> dict[str, Any]:
    """The RiskAssessment of one score of one discharge."""
    basis = list(
        dict.fromkeys(reference for part in scored.components.values() for reference in part.get("basis", []))
    )
    points = ", ".join(f"{name} {part['points']}" for name, part in scored.components.items())
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "identifier": [{"system": RISK_IDENTIFIER_SYSTEM, "value": f"{scored.encounter_id}/{scored.score}"}],
        "status": "final",
        "method": {"text": METHODS.get(scored.score, scored.score)},
        "subject": {"reference": f"Patient/{scored.patient_id}"},
        "encounter": {"reference": f"Encounter/{scored.encounter_id}"},
        "occurrenceDateTime": scored.as_of.isoformat(),
        "prediction": [
            {
                "outcome": {"text": "Readmission or death within 30 days of discharge"},
                "qualitativeRisk": {
                    "coding": [{"system": _PROBABILITY, "code": scored.band}],
                    "text": f"{scored.score.upper()} {scored.value} ({scored.band})",
                },
                "whenRange": {
                    "high": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
                },
            }
        ],
        "note": [{"text": f"{scored.score.upper()} {scored.value}: {points}"}],
    }
    if basis:
        resource["basis"] = [{"reference": reference} for reference in basis]
    return resource
