"""Templates: every variant's newest version, and a template's page with a live preview rendered for a
chosen patient on each of its channels (SMS segment count and encoding; email subject, text and HTML).
The patient is posted, never put in the URL; the preview shows patient data, so it needs `patients:read`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aftercare.journey_variables import JourneyVariables
from aftercare.sms_segments import SmsSize, sms_size
from aftercare.store.attributes import attributes_of
from aftercare.store.identity import person_of
from aftercare.store.patients import get_patient
from aftercare.store.templates import PublishedVariant, latest_variants
from aftercare.templating import TemplateRenderError, render
from api.deps import get_services
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render as render_page

router = APIRouter(prefix="/console/templates", include_in_schema=False)


@dataclass(frozen=True)
class Preview:
    """One variant rendered for a patient, or the error that stopped it."""

    variant: PublishedVariant
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    sms: SmsSize | None = None
    error: str | None = None


def preview_variant(variant: PublishedVariant, variables: JourneyVariables) -> Preview:
    """Render one variant as the send step would."""
    definition = variant.definition
    names = variables.template_variables()
    try:
        subject = render(definition.subject, names) if definition.subject else None
        body = render(definition.body, names) if definition.body else None
        html = render(definition.html, names, html=True) if definition.html else None
    except TemplateRenderError as error:
        return Preview(variant, error=str(error))
    sms = sms_size(body or "") if definition.channel == "sms" else None
    return Preview(variant, subject, body, html, sms)


@router.get("", response_class=HTMLResponse)
async def templates(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Every template variant, newest version."""
    async with get_services(request).sessions() as session:
        variants = await latest_variants(session)
    return render_page(request, "templates.html", {"variants": variants})


def _page(
    request: Request,
    key: str,
    variants: list[PublishedVariant],
    previews: list[Preview] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    if not variants:
        return render_page(request, "not_found.html", {"what": "template"}, status_code=404)
    context = {"key": key, "variants": variants, "previews": previews, "error": error}
    return render_page(request, "template.html", context, status_code=422 if error else 200)


@router.get("/{key}", response_class=HTMLResponse)
async def template(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """A template's variants, and the preview form."""
    async with get_services(request).sessions() as session:
        variants = await latest_variants(session, key=key)
    return _page(request, key, variants)


@router.post("/{key}/preview", response_class=HTMLResponse)
async def preview(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """Each variant rendered for the chosen patient."""
    patient_id = (await read_form(request)).get("patient_id", "").strip()
    services = get_services(request)
    async with services.sessions() as session:
        person = await person_of(session, patient_id) if patient_id else None
        profile = await get_patient(session, person) if person else None
        attributes = await attributes_of(session, profile.id) if profile else {}
        variants = await latest_variants(session, key=key)
    if profile is None:
        return _page(request, key, variants, error="There is no patient with this id.")
    variables = JourneyVariables(
        profile=profile,
        patient_resource=None,
        trigger=None,
        event=None,
        context={},
        enrollment={"id": "preview", "journey_key": None, "step_id": None},
        attributes=attributes,
        hospital_timezone=services.settings.hospital_timezone,
    )
    return _page(request, key, variants, [preview_variant(variant, variables) for variant in variants])
