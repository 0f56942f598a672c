"""The preference centre: what a patient receives (consent per channel and purpose), how (preferred
channel and language), when (quiet hours) and a pause of N days. Opened by the footer link of every
email; validated on the server, errors next to the field, POST-redirect-GET. A change holds from the
next send decision, and shows in the consent history, the decision log and the audit trail."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from aftercare.patient_links.catalogue import translate
from aftercare.patient_links.preferences import (
    CONSENT_CHANNELS,
    Preferences,
    Submitted,
    parse_form,
    read_preferences,
    save_preferences,
)
from aftercare.patient_links.tokens import PatientLinkClaims
from api.deps import ServicesDep
from api.services import Services
from models.journey import CHANNELS, PURPOSES
from models.tables import Patient
from patient_pages.pages import audit_change, form, read_link, refused, render

router = APIRouter(prefix="/p", tags=["patient pages"], include_in_schema=False)


async def _open(
    request: Request, services: Services, token: str
) -> tuple[PatientLinkClaims, Preferences] | HTMLResponse:
    """The link's claims and the patient's preferences, or the page saying why it cannot be opened."""
    claims = read_link(request, services, "preferences", token)
    if isinstance(claims, HTMLResponse):
        return claims
    async with services.sessions() as session:
        patient = await session.get(Patient, claims.patient_id)
        if patient is None:
            return refused("gone", "en")
        opt_in = services.settings.guardrails.opt_in_purposes
        return claims, await read_preferences(session, patient, opt_in, datetime.now(UTC))


def _page(
    token: str,
    claims: PatientLinkClaims,
    shown: Preferences,
    *,
    status_code: int = 200,
    saved: bool = False,
    errors: dict[str, str] | None = None,
    paused_until: datetime | None = None,
) -> HTMLResponse:
    language = shown.language
    return render(
        "preferences.html",
        language,
        status_code,
        title=translate(language, "preferences.title"),
        action=f"/p/{token}",
        prefs=shown,
        channels=CHANNELS,
        consent_channels=CONSENT_CHANNELS,
        purposes=PURPOSES,
        focus=claims.purpose,
        saved=saved,
        errors=errors or {},
        paused_until=paused_until.date().isoformat() if paused_until else None,
    )


@router.get("/{token}", response_class=HTMLResponse)
async def preferences_page(token: str, request: Request, services: ServicesDep, saved: int = 0) -> Response:
    """The patient's preferences, as they stand."""
    opened = await _open(request, services, token)
    if isinstance(opened, HTMLResponse):
        return opened
    claims, current = opened
    return _page(token, claims, current, saved=bool(saved), paused_until=current.paused_until)


@router.post("/{token}", response_class=HTMLResponse)
async def save(token: str, request: Request, services: ServicesDep) -> Response:
    """Save the posted choices (all or nothing)."""
    opened = await _open(request, services, token)
    if isinstance(opened, HTMLResponse):
        return opened
    claims, current = opened
    submitted: Submitted = parse_form(await form(request))
    if submitted.errors:
        shown = replace(submitted.preferences, language=current.language)
        return _page(token, claims, shown, status_code=422, errors=submitted.errors)
    opt_in = services.settings.guardrails.opt_in_purposes
    async with services.sessions.begin() as session:
        changes = await save_preferences(session, claims.patient_id, opt_in, submitted, datetime.now(UTC))
    if changes:
        await audit_change(services, request, "change_preferences", claims.patient_id)
    return RedirectResponse(f"/p/{token}?saved=1", status_code=303)
