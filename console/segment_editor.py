"""The segment builder: the segment's YAML (the latest version with its number raised, or a starter)
beside a picker of the criteria the DSL knows, each with an example to copy; published with the API's
own validation, each error at its line (`console/editing.py`). The segment's page then previews its
count and first members."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.security.principal import Principal
from aftercare.segments.validation import check_segment, parse_segment
from aftercare.store.segments import SegmentVersionConflict, get_segment, publish_segment
from api.definition_owner import owned
from console.editing import DefinitionEditor, add_editor, next_version_yaml
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
    ("segment", "segment: other-segment-key"),
    ("not / any / all", "not: {encounter: {class: IMP, discharged_within: P30D}}"),
)


async def _opening(session: AsyncSession, key: str, _: Mapping[str, str]) -> str | None:
    return next_version_yaml(await get_segment(session, key))


async def _publishing(session: AsyncSession, document: Any, user: Principal) -> str:
    segment = parse_segment(document)
    segment = await owned(session, user, Segment, segment, what="segment")
    await check_segment(session, segment)
    await publish_segment(session, segment)
    return f"/console/segments/{segment.key}"


EDITOR = DefinitionEditor(
    prefix=router.prefix,
    title="Build a segment",
    label="Segment (YAML)",
    submit="Save as a new version",
    starter=STARTER,
    opening=_opening,
    publishing=_publishing,
    conflicts=(SegmentVersionConflict,),
    extra={"picker": CRITERIA},
)
add_editor(router, EDITOR)
