"""Templates: every variant's newest version, and a template's page with a live preview rendered for a
chosen patient on each channel (SMS segment count and encoding; email subject, text and HTML), and a
test send of a variant, composed for a chosen patient, to an address the user gives. The patient is
posted, never put in the URL; the preview and the test send show patient data, so they need
`patients:read`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from temporalio.exceptions import ApplicationError

from activities.messaging.staff_test import (
    TEST_CHANNELS,
    StaffTestSend,
    TestSendRefused,
    send_staff_test,
    staff_address,
)
from activities.registry import build_provider_registry
from aftercare.compose import TemplateNotFoundError
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
from models.tables import Message

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
    *,
    test_errors: dict[str, str] | None = None,
    test_sent: Message | None = None,
) -> HTMLResponse:
    if not variants:
        return render_page(request, "not_found.html", {"what": "template"}, status_code=404)
    context = {
        "key": key,
        "variants": variants,
        "channels": sorted({variant.definition.channel for variant in variants} & set(TEST_CHANNELS)),
        "previews": previews,
        "error": error,
        "test_errors": test_errors or {},
        "test_sent": test_sent,
    }
    return render_page(request, "template.html", context, status_code=422 if error or test_errors else 200)


@router.get("/{key}", response_class=HTMLResponse)
async def template(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """A template's variants, and the preview and test send forms."""
    return _page(request, key, await _variants(request, key))


async def _patient_variables(request: Request, patient_id: str) -> JourneyVariables | None:
    """What a template sees for this patient (as a send step would), or None when there is none."""
    services = get_services(request)
    async with services.sessions() as session:
        person = await person_of(session, patient_id) if patient_id else None
        profile = await get_patient(session, person) if person else None
        attributes = await attributes_of(session, profile.id) if profile else {}
    if profile is None:
        return None
    return JourneyVariables(
        profile=profile,
        patient_resource=None,
        trigger=None,
        event=None,
        context={},
        enrollment={"id": "preview", "journey_key": None, "step_id": None},
        attributes=attributes,
        hospital_timezone=services.settings.hospital_timezone,
    )


async def _variants(request: Request, key: str) -> list[PublishedVariant]:
    async with get_services(request).sessions() as session:
        return list(await latest_variants(session, key=key))


@router.post("/{key}/preview", response_class=HTMLResponse)
async def preview(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """Each variant rendered for the chosen patient."""
    patient_id = (await read_form(request)).get("patient_id", "").strip()
    variables = await _patient_variables(request, patient_id)
    variants = await _variants(request, key)
    if variables is None:
        return _page(request, key, variants, error="There is no patient with this id.")
    return _page(request, key, variants, [preview_variant(variant, variables) for variant in variants])


@router.post("/{key}/test-send", response_class=HTMLResponse)
async def test_send(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """Send one variant, composed for the chosen patient, to an address the user gives: through the
    real send path, to that address only (see `activities/messaging/staff_test.py`)."""
    form = await read_form(request)
    channel, raw_to = form.get("channel", ""), form.get("to", "")
    variants = await _variants(request, key)
    variables = await _patient_variables(request, form.get("patient_id", "").strip())
    if variables is None:
        return _page(request, key, variants, test_errors={"patient_id": "There is no patient with this id."})
    services = get_services(request)
    try:
        to = staff_address(channel, raw_to, services.settings.phone_default_region)
        send = StaffTestSend(template_key=key, channel=channel, to=to, staff=user.subject)
        message = await send_staff_test(
            services.sessions, build_provider_registry(services.settings, services.sessions), send, variables
        )
    except TestSendRefused as error:
        return _page(request, key, variants, test_errors={"to": str(error)})
    except TemplateNotFoundError:
        return _page(request, key, variants, test_errors={"channel": f"{key} has no {channel} variant"})
    except TemplateRenderError as error:
        return _page(request, key, variants, test_errors={"channel": f"the variant does not render: {error}"})
    except ApplicationError as error:  # the provider is away; the message stays pending, as any send's
        return _page(request, key, variants, test_errors={"to": f"the provider did not take it yet: {error}"})
    return _page(request, key, variants, test_sent=message)
