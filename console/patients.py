"""Patients: search by name, MRN (any identifier) or phone; a patient's page (profile, consents with
edit, channels, enrollments, messages, care tasks, decision log, identity, one timeline).

The search form posts its terms, so they stay out of URLs and logs; `?q=` works too (the contract's
route). Consent changes are validated with the API's own model and saved in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from aftercare.security.principal import Principal
from aftercare.store.consents import record_consent
from aftercare.store.decisions import list_decisions
from aftercare.store.identity import records_of
from aftercare.store.patient_search import PatientQuery, search_patients
from aftercare.store.risk_scores import scores_of
from aftercare.store.tasks import list_tasks
from api.deps import get_services
from api.routes.patients import patient_view, resolve_person
from api.routes.risk import score_view
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render
from models.api import ConsentChange, PatientSummary, PatientView
from models.risk_api import RiskScoreView
from models.roles import Permission
from models.tables import SendDecision, Task

router = APIRouter(prefix="/console/patients", include_in_schema=False)

SEARCH_LIMIT = 25
CONSENT_CHANNELS = ("*", "sms", "email", "letter", "push", "voice")
CONSENT_PURPOSES = (
    "*",
    "phi",
    "care_coordination",
    "appointment_reminders",
    "health_education",
    "surveys",
    "marketing",
)


def queries_for(text: str) -> list[PatientQuery]:
    """What one search box means: a name, and where it holds digits an identifier (MRN) or a phone."""
    text = text.strip()
    if not text:
        return []
    queries = [PatientQuery(name=text)]
    digits = sum(character.isdigit() for character in text)
    if digits:
        queries.append(PatientQuery(identifier=text))
    if digits >= 7:
        queries.append(PatientQuery(phone=text))
    return queries


async def find_patients(request: Request, text: str) -> list[PatientSummary]:
    """The persons a search box's text finds, by any of its meanings, in name order."""
    services = get_services(request)
    found: dict[str, PatientSummary] = {}
    async with services.sessions() as session:
        for query in queries_for(text):
            page = await search_patients(
                session, query, phone_region=services.settings.phone_default_region, limit=SEARCH_LIMIT
            )
            for patient in page.patients:
                found.setdefault(patient.id, PatientSummary.model_validate(patient))
    return sorted(found.values(), key=lambda item: ((item.family or "").lower(), (item.given or "").lower()))


async def _search_page(request: Request, text: str) -> HTMLResponse:
    results = await find_patients(request, text) if text.strip() else None
    return render(request, "patients.html", {"q": text, "results": results})


@router.get("", response_class=HTMLResponse)
async def patients(request: Request, user: ConsoleUser, q: str = "") -> HTMLResponse:
    """The search form (and its results for `?q=`)."""
    return await _search_page(request, q[:300])


@router.post("", response_class=HTMLResponse)
async def search(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The results of the search form."""
    text = (await read_form(request)).get("q")
    return await _search_page(request, text[:300] if isinstance(text, str) else "")


@dataclass(frozen=True)
class PatientPage:
    """The patient page's view model."""

    patient: PatientView
    tasks: list[Task]
    decisions: list[SendDecision]
    risk: list[RiskScoreView] = field(default_factory=list)


async def patient_page(request: Request, patient_id: str, user: Principal) -> PatientPage:
    """Everything the patient page shows, as this user may see it."""
    async with get_services(request).sessions() as session:
        patient = await patient_view(session, patient_id, user, timeline_limit=100, observation_codes=10)
        tasks = (
            list(await list_tasks(session, patient_id=patient.id, status=None, limit=50))
            if user.can(Permission.TASKS_READ)
            else []
        )
        records = await records_of(session, patient.id)
        decisions = list(await list_decisions(session, records, limit=50))
        risk = (
            [
                score_view(row, get_services(request).settings.bands)
                for row in await scores_of(session, records)
            ]
            if user.can(Permission.CLINICAL_READ)
            else []
        )
    return PatientPage(patient, tasks, decisions, risk[:10])


async def _page(
    request: Request, patient_id: str, user: Principal, form: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    view = await patient_page(request, patient_id, user)
    return render(request, "patient.html", {"page": view, "consent": form}, status_code=status_code)


@router.get("/{patient_id}", response_class=HTMLResponse)
async def patient(request: Request, patient_id: str, user: ConsoleUser) -> HTMLResponse:
    """A patient's 360 page."""
    try:
        return await _page(request, patient_id, user, _consent_form_defaults())
    except HTTPException as error:
        if error.status_code == 404:
            return render(request, "not_found.html", {"what": "patient"}, status_code=404)
        raise


def _consent_form_defaults() -> dict[str, Any]:
    return {
        "channels": CONSENT_CHANNELS,
        "purposes": CONSENT_PURPOSES,
        "values": {"channel": "sms", "purpose": "*", "status": "granted", "detail": ""},
        "errors": {},
    }


@router.post("/{patient_id}/consents", response_class=HTMLResponse)
async def change_consent(request: Request, patient_id: str, user: ConsoleUser) -> Response:
    """Record one consent change; errors show next to their fields and nothing is saved."""
    form = await read_form(request)
    values = {name: form.get(name) or "" for name in ("channel", "purpose", "status", "detail")}
    try:
        change = ConsentChange(
            channel=str(values["channel"]),
            purpose=str(values["purpose"]),
            status=str(values["status"]),  # checked by the model
            source="console",
            detail=str(values["detail"]) or None,
        )
    except ValidationError as error:
        errors = {str(problem["loc"][0]): problem["msg"] for problem in error.errors()}
        form_values = {"channels": CONSENT_CHANNELS, "purposes": CONSENT_PURPOSES, "values": values}
        return await _page(request, patient_id, user, {**form_values, "errors": errors}, status_code=422)
    async with get_services(request).sessions() as session, session.begin():
        person = await resolve_person(session, patient_id)
        await record_consent(
            session, [person], change.channel, change.status, change.source, change.detail, change.purpose
        )
    return RedirectResponse(f"/console/patients/{person}#consents", status_code=303)
