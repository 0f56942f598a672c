"""The segment builder: the segment's YAML (the latest version with its number raised, or a starter)
beside a picker of the criteria the DSL knows, each with an example to copy; published with the API's
own validation, each error at its line. The segment's page then previews its count and first members."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.definitions import DefinitionInvalidError
from aftercare.segments.validation import check_segment, parse_segment
from aftercare.store.segments import SegmentVersionConflict, get_segment, publish_segment
from api.definition_owner import owned
from api.deps import get_services
from console.auth import ConsoleUser
from console.editing import EditorError, EditorRefused, editor_page, located, next_version_yaml, read_yaml
from console.forms import read_form
from console.rendering import render
from console.yaml_lines import line_of
from models.segment_tables import Segment

router = APIRouter(prefix="/console/segments", include_in_schema=False)

STARTER = """key: {key}
version: 1
name: New segment
criteria:
  all:
    - age: {{gte: 18}}
"""
# The picker: each criterion of the DSL (contract §5) with an example.
CRITERIA = (
    ("age", "age: {gte: 65}"),
    ("gender", "gender: {eq: female}"),
    ("language", "language: {in: [es, pt]}"),
    ("postal_code", "postal_code: {in: ['02139', '02140']}"),
    (
        "condition",
        "condition: {code: {system: 'http://snomed.info/sct', code: '44054006'}, clinical_status: active}",
    ),
    (
        "observation",
        "observation: {code: {system: 'http://loinc.org', code: '4548-4'}, latest: true, value: {gt: 9}}",
    ),
    ("medication", "medication: {code: {value_set: hypertension}}"),
    ("procedure", "procedure: {code: {system: 'http://snomed.info/sct', code: '73761001'}, within: P3650D}"),
    ("allergy", "allergy: {code: {system: 'http://snomed.info/sct', code: '91936005'}}"),
    ("encounter", "encounter: {class: IMP, discharged_within: P30D}"),
    ("appointment", "appointment: {upcoming_within: P14D}"),
    ("engagement", "engagement: {replied_within: P30D}"),
    ("consent", "consent: {channel: sms, purpose: health_education, status: granted}"),
    ("risk", "risk: {score: lace, gte: 10, discharged_within: P30D}"),
    ("segment", "segment: other-segment-key"),
    ("not / any / all", "not: {encounter: {class: IMP, discharged_within: P30D}}"),
)


def _context(key: str, text: str, errors: list[EditorError]) -> dict[str, object]:
    page = editor_page(
        f"/console/segments/{key}/editor",
        text,
        errors,
        title="Build a segment",
        label="Segment (YAML)",
        submit="Save as a new version",
    )
    return {**page, "picker": CRITERIA}


@router.get("/{key}/editor", response_class=HTMLResponse)
async def editor(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The builder on the next version of the segment (or a starter for a new key)."""
    async with get_services(request).sessions() as session:
        segment = await get_segment(session, key)
    text = next_version_yaml(segment, STARTER.format(key=key))
    return render(request, "definition_editor.html", _context(key, text, []))


@router.post("/{key}/editor", response_class=HTMLResponse)
async def publish(request: Request, key: str, user: ConsoleUser) -> Response:
    """Save the segment as a new version, or show the builder again with the errors."""
    text = (await read_form(request)).get("definition", "").replace("\r\n", "\n")
    try:
        segment = parse_segment(read_yaml(text))
        async with get_services(request).sessions() as session, session.begin():
            segment = await owned(session, user, Segment, segment, what="segment")
            await check_segment(session, segment)
            await publish_segment(session, segment)
    except EditorRefused as error:
        errors = error.errors
    except HTTPException as refused:  # the caller's facilities: whose segment it would be
        errors = [EditorError(line_of(text, ("facility",)), "facility", str(refused.detail))]
    except DefinitionInvalidError as error:
        errors = located(text, error.problems)
    except SegmentVersionConflict as error:
        errors = [EditorError(line_of(text, ("version",)), "version", str(error))]
    else:
        return RedirectResponse(f"/console/segments/{segment.key}", status_code=303)
    return render(request, "definition_editor.html", _context(key, text, errors), status_code=422)
