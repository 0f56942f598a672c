"""The decision log: what the guardrails decided about each of a patient's sends, and by which rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aftercare.store.decisions import list_decisions
from api.deps import SessionDep
from api.routes.patients import resolve_person
from models.api import DecisionsView, DecisionView

router = APIRouter(prefix="/v1/patients", tags=["decisions"])


@router.get("/{patient_id}/decisions", response_model=DecisionsView)
async def get_decisions(
    patient_id: str,
    session: SessionDep,
    decision: Annotated[str | None, Query(pattern="^(sent|deferred|suppressed|skipped)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionsView:
    """Decisions (sent, deferred, suppressed, skipped) with their rule and reason, newest first."""
    person = await resolve_person(session, patient_id)
    rows = await list_decisions(
        session, list(dict.fromkeys([patient_id, person])), decision=decision, limit=limit
    )
    return DecisionsView(items=[DecisionView.model_validate(row, from_attributes=True) for row in rows])
