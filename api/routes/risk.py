"""A patient's readmission risk: the scores of their discharges, component by component."""

from __future__ import annotations

from fastapi import APIRouter

from aftercare.risk.bands import Bands
from aftercare.risk.scores import ordered_components
from aftercare.store.identity import records_of
from aftercare.store.risk_scores import scores_of
from api.deps import ServicesDep, SessionDep
from api.routes.patients import resolve_person
from models.risk_api import PatientRisk, RiskComponentView, RiskScoreView
from models.risk_tables import RiskScore

router = APIRouter(prefix="/v1/patients", tags=["risk"])


def score_view(row: RiskScore, bands: dict[str, Bands]) -> RiskScoreView:
    """A stored score with its band under the configured bands; components in the order of the score's
    name (L, A, C, E; H, O, S, P, I, T, A), which JSONB does not keep."""
    return RiskScoreView(
        score=row.score,
        value=row.value,
        band=bands[row.score].band(row.value),
        as_of=row.as_of,
        encounter_id=row.encounter_id,
        patient_id=row.patient_id,
        discharged_at=row.discharged_at,
        algorithm=row.algorithm,
        components={
            name: RiskComponentView(**part)
            for name, part in ordered_components(row.score, row.components).items()
        },
    )


@router.get("/{patient_id}/risk", response_model=PatientRisk)
async def patient_risk(patient_id: str, session: SessionDep, services: ServicesDep) -> PatientRisk:
    """The readmission risk scores of every discharge of the person's records, the latest first; each
    component with its points and the FHIR resources it came from. 404 for an unknown patient."""
    person = await resolve_person(session, patient_id)
    rows = await scores_of(session, await records_of(session, person))
    bands = services.settings.bands
    return PatientRisk(patient_id=person, scores=[score_view(row, bands) for row in rows])
