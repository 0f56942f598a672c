"""A patient's consents per channel and purpose, with their history, and their own quiet hours."""

from __future__ import annotations

from fastapi import APIRouter

from aftercare.guardrails.decide import QUIET_HOURS_ATTRIBUTE
from aftercare.store.attributes import attribute_of, set_attributes
from aftercare.store.consents import consent_history, current_consents, record_consent
from api.deps import SessionDep
from api.routes.patients import resolve_person
from models.api import ConsentsUpdate, ConsentsView, ConsentView

router = APIRouter(prefix="/v1/patients", tags=["consents"])


async def _view(session: SessionDep, person: str) -> ConsentsView:
    current = await current_consents(session, person)
    history = await consent_history(session, person)
    quiet = await attribute_of(session, person, QUIET_HOURS_ATTRIBUTE)
    return ConsentsView(
        patient_id=person,
        current=[ConsentView.model_validate(row, from_attributes=True) for row in current],
        history=[ConsentView.model_validate(row, from_attributes=True) for row in history],
        quiet_hours=quiet if isinstance(quiet, str) else None,
    )


@router.get("/{patient_id}/consents", response_model=ConsentsView)
async def get_consents(patient_id: str, session: SessionDep) -> ConsentsView:
    """Current consents (latest per channel and purpose), the full history, and the quiet hours."""
    person = await resolve_person(session, patient_id)
    return await _view(session, person)


@router.put("/{patient_id}/consents", response_model=ConsentsView)
async def put_consents(patient_id: str, update: ConsentsUpdate, session: SessionDep) -> ConsentsView:
    """Record consent changes (appended to the history) and set the patient's quiet hours."""
    async with session.begin():
        person = await resolve_person(session, patient_id)
        for change in update.consents:
            await record_consent(
                session, [person], change.channel, change.status, change.source, change.detail, change.purpose
            )
        if update.quiet_hours is not None:
            await set_attributes(session, person, {QUIET_HOURS_ATTRIBUTE: update.quiet_hours}, source="api")
    return await _view(session, person)
