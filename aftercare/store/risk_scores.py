"""Risk scores kept in step with the patient's FHIR data: every inpatient discharge of a patient whose
Encounters, Conditions, Procedures or haemoglobin/sodium results changed is scored again (LACE, and
HOSPITAL where its inputs exist), and a stored score changes (with its `as_of`) only when
its value, components or algorithm do; each recent discharge's TCM episode is opened or brought up to date
with it. Runs in the transaction that stored the resources. Bands (`RISK_BANDS`) and the zone of a patient
in no facility (`HOSPITAL_TIMEZONE`) come from the process settings."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.clinical.facts import COMPONENT_SEPARATOR, tokens
from aftercare.facilities.voice import Voice, voice_of
from aftercare.fhir.references import patient_id_of
from aftercare.risk.charlson import Condition
from aftercare.risk.discharges import Visit, visit_of
from aftercare.risk.hospital import HAEMOGLOBIN, SODIUM, Measurement, Performed, hospital
from aftercare.risk.lace import DatedCondition, lace
from aftercare.risk.scores import Score
from aftercare.settings import get_settings
from aftercare.store.tcm_episodes import Discharged, episode_rows
from models.facility_tables import Facility
from models.risk_tables import RiskScore
from models.zones import zone_info

# Resource types a score reads: a change to one of them scores the patient's discharges again.
SCORED_FROM = frozenset({"Encounter", "Condition", "Procedure"})
LABORATORY = HAEMOGLOBIN | SODIUM
_CHUNK = 1000

# Everything the scores of a chunk of patients read, in one statement: their Encounters (only the
# elements the scores read, out of the stored JSON), conditions not refuted, haemoglobin and sodium
# results and procedures, each as a JSON array of rows; and each patient's facility, for its zone and
# holidays (the one `voices_of` gives: the managing organization's, else the earliest placement).
_READ = text(
    """
    SELECT
        (SELECT coalesce(jsonb_agg(jsonb_build_array(r.patient_id, jsonb_build_object(
                    'id', r.content->'id', 'status', r.content->'status', 'class', r.content->'class',
                    'period', r.content->'period', 'priority', r.content->'priority',
                    'hospitalization', r.content->'hospitalization',
                    'serviceType', r.content->'serviceType'))), '[]'::jsonb)
         FROM fhir_resources r
         WHERE r.resource_type = 'Encounter' AND r.patient_id = ANY(CAST(:ids AS varchar[]))
           AND r.content->>'status' IS DISTINCT FROM 'entered-in-error'),
        (SELECT coalesce(jsonb_agg(jsonb_build_array(
                    c.patient_id, c.resource_id, c.codes, coalesce(c.onset_at, c.recorded_at))), '[]'::jsonb)
         FROM clinical_conditions c
         WHERE c.patient_id = ANY(CAST(:ids AS varchar[]))
           AND c.verification_status IS DISTINCT FROM 'refuted'
           AND c.verification_status IS DISTINCT FROM 'entered-in-error'),
        (SELECT coalesce(jsonb_agg(jsonb_build_array(
                    o.patient_id, o.resource_id, o.codes, o.value_number, o.value_unit, o.effective_at)),
                    '[]'::jsonb)
         FROM clinical_observations o
         WHERE o.patient_id = ANY(CAST(:ids AS varchar[])) AND o.codes && CAST(:labs AS varchar[])
           AND o.value_number IS NOT NULL AND o.effective_at IS NOT NULL
           AND o.status NOT IN ('cancelled', 'entered-in-error', 'preliminary')),
        (SELECT coalesce(jsonb_agg(jsonb_build_array(p.patient_id, p.resource_id, p.performed_at)),
                    '[]'::jsonb)
         FROM clinical_procedures p
         WHERE p.patient_id = ANY(CAST(:ids AS varchar[])) AND p.performed_at IS NOT NULL
           AND p.status NOT IN ('not-done', 'entered-in-error', 'preparation')),
        (SELECT coalesce(jsonb_agg(jsonb_build_array(v.patient_id, v.facility)), '[]'::jsonb)
         FROM (
            SELECT DISTINCT ON (pf.patient_id) pf.patient_id, jsonb_build_object(
                    'key', f.key, 'name', f.name, 'timezone', f.timezone, 'country', f.country,
                    'subdivision', f.subdivision, 'holidays', f.holidays, 'quiet_hours', f.quiet_hours,
                    'senders', f.senders, 'help_phone', f.help_phone) AS facility
            FROM patient_facilities pf JOIN facilities f ON f.key = pf.facility
            WHERE pf.patient_id = ANY(CAST(:ids AS varchar[]))
            ORDER BY pf.patient_id,
                CASE WHEN pf.source = 'managing_organization' THEN 0 ELSE 1 END, pf.added_at, pf.facility
         ) v)
    """
)

# Everything a chunk's scores change, in one statement: scores of encounters no longer discharges
# dropped, the scores upserted (a score changes, with its `as_of`, only when its value, components,
# algorithm, discharge time or patient do) and the TCM episodes of recent discharges opened or brought up
# to date (a complexity set by staff stays, and with it the visit deadline).
_WRITE = text(
    """
    WITH scored AS (
        SELECT * FROM jsonb_to_recordset(CAST(:scores AS jsonb)) AS s(
            encounter_id text, score text, patient_id text, value integer, components jsonb,
            algorithm text, discharged_at timestamptz)
    ),
    stale AS (
        DELETE FROM risk_scores r
        WHERE r.patient_id = ANY(CAST(:ids AS varchar[]))
          AND NOT EXISTS (SELECT 1 FROM scored s WHERE s.encounter_id = r.encounter_id AND s.score = r.score)
    ),
    upserted AS (
        INSERT INTO risk_scores AS r
            (encounter_id, score, patient_id, value, components, algorithm, discharged_at)
        SELECT encounter_id, score, patient_id, value, components, algorithm, discharged_at FROM scored
        ON CONFLICT (encounter_id, score) DO UPDATE SET
            value = excluded.value, components = excluded.components, algorithm = excluded.algorithm,
            discharged_at = excluded.discharged_at, patient_id = excluded.patient_id, as_of = now()
        WHERE (r.value, r.components, r.algorithm, r.discharged_at, r.patient_id)
            IS DISTINCT FROM
            (excluded.value, excluded.components, excluded.algorithm, excluded.discharged_at,
             excluded.patient_id)
    )
    INSERT INTO tcm_episodes AS e (
        id, encounter_id, patient_id, facility, timezone, discharged_at, contact_due_at, visit_due_at,
        complexity, risk_band)
    SELECT id, encounter_id, patient_id, facility, timezone, discharged_at, contact_due_at, visit_due_at,
        complexity, risk_band
    FROM jsonb_to_recordset(CAST(:episodes AS jsonb)) AS x(
        id text, encounter_id text, patient_id text, facility text, timezone text,
        discharged_at timestamptz, contact_due_at timestamptz, visit_due_at timestamptz,
        complexity text, risk_band text)
    ON CONFLICT (encounter_id) DO UPDATE SET
        patient_id = excluded.patient_id, facility = excluded.facility, timezone = excluded.timezone,
        discharged_at = excluded.discharged_at, contact_due_at = excluded.contact_due_at,
        risk_band = excluded.risk_band,
        complexity = CASE WHEN e.complexity_source = 'risk' THEN excluded.complexity ELSE e.complexity END,
        visit_due_at = CASE WHEN e.complexity_source = 'risk' THEN excluded.visit_due_at
                            ELSE e.visit_due_at END,
        updated_at = now()
    """
)


async def record_risk_scores(session: AsyncSession, resources: Sequence[dict[str, Any]]) -> int:
    """Score again the discharges of the patients these current resources touch; returns how many
    scores were made."""
    patients = {
        patient
        for resource in resources
        if affects_scores(resource)
        for patient in [patient_id_of(resource)]
        if patient is not None
    }
    return await rescore_patients(session, sorted(patients))


def affects_scores(resource: dict[str, Any]) -> bool:
    """An Encounter, Condition or Procedure, or a haemoglobin or sodium Observation."""
    kind = resource.get("resourceType")
    if kind == "Observation":
        return bool(LABORATORY & set(tokens(resource.get("code"))))
    return kind in SCORED_FROM


async def rescore_patients(session: AsyncSession, patient_ids: Sequence[str]) -> int:
    """Score every inpatient discharge of these patients; drop scores of encounters no longer discharges.
    A chunk of patients costs two statements: what the scores read (the patients' facilities included)
    and one write of every score and episode."""
    scored = 0
    for start in range(0, len(patient_ids), _CHUNK):
        scored += await _rescore_chunk(session, list(patient_ids[start : start + _CHUNK]))
    return scored


async def _rescore_chunk(session: AsyncSession, patient_ids: list[str]) -> int:
    if not patient_ids:
        return 0
    found = await _read(session, patient_ids)
    settings = get_settings()
    has_discharge = any(visit.is_discharge for patient in found.visits.values() for visit in patient)
    voices = found.voices if has_discharge else {}
    lace_bands = settings.bands["lace"]
    rows: list[dict[str, Any]] = []
    discharged: list[Discharged] = []
    for patient_id, patient_visits in found.visits.items():
        voice = voices.get(patient_id)
        zone = zone_info(voice.timezone if voice is not None else settings.hospital_timezone)
        conditions = found.conditions.get(patient_id, [])
        for stay in patient_visits:
            if stay.is_discharge and stay.end is not None:
                score = lace(stay, patient_visits, conditions, zone)
                rows.append(_row(patient_id, stay.end, score))
                other = hospital(
                    stay,
                    patient_visits,
                    found.measurements.get(patient_id, []),
                    found.procedures.get(patient_id, []),
                    zone,
                )
                if other is not None:
                    rows.append(_row(patient_id, stay.end, other))
                discharged.append(
                    Discharged(
                        patient_id,
                        score.encounter_id,
                        stay.end,
                        lace_bands.band(score.value),
                        voice,
                        settings.hospital_timezone,
                    )
                )
    episodes = episode_rows(discharged, datetime.now(UTC))
    await session.execute(
        _WRITE, {"ids": patient_ids, "scores": json.dumps(rows), "episodes": json.dumps(episodes)}
    )
    return len(rows)


def _row(patient_id: str, discharged_at: datetime, score: Score) -> dict[str, Any]:
    return {
        "encounter_id": score.encounter_id,
        "score": score.score,
        "patient_id": patient_id,
        "value": score.value,
        "components": score.components_json(),
        "algorithm": score.algorithm,
        "discharged_at": discharged_at.isoformat(),
    }


@dataclass
class _Found:
    visits: dict[str, list[Visit]] = field(default_factory=lambda: defaultdict(list))
    conditions: dict[str, list[DatedCondition]] = field(default_factory=lambda: defaultdict(list))
    measurements: dict[str, list[Measurement]] = field(default_factory=lambda: defaultdict(list))
    procedures: dict[str, list[Performed]] = field(default_factory=lambda: defaultdict(list))
    voices: dict[str, Voice] = field(default_factory=dict)  # of patients placed in a facility


async def _read(session: AsyncSession, patient_ids: list[str]) -> _Found:
    """What the scores of these patients read (one statement)."""
    visits, conditions, measurements, procedures, facilities = (
        await session.execute(_READ, {"ids": patient_ids, "labs": sorted(LABORATORY)})
    ).one()
    found = _Found(voices={patient_id: voice_of(Facility(**facility)) for patient_id, facility in facilities})
    for patient_id, content in visits:
        found.visits[patient_id].append(visit_of(content))
    for patient_id, resource_id, codes, known_from in conditions:
        condition = Condition(reference=f"Condition/{resource_id}", codes=tuple(codes))
        found.conditions[patient_id].append(DatedCondition(condition, _instant(known_from)))
    for patient_id, resource_id, codes, value, unit, at in measurements:
        reference = f"Observation/{resource_id.partition(COMPONENT_SEPARATOR)[0]}"
        found.measurements[patient_id].append(
            Measurement(reference, tuple(codes), float(value), unit, datetime.fromisoformat(at))
        )
    for patient_id, resource_id, at in procedures:
        found.procedures[patient_id].append(Performed(f"Procedure/{resource_id}", datetime.fromisoformat(at)))
    return found


def _instant(value: str | None) -> datetime | None:
    """A timestamp as PostgreSQL writes it in JSON (ISO 8601 with its offset)."""
    return datetime.fromisoformat(value) if value is not None else None


async def scores_of(session: AsyncSession, patient_ids: Iterable[str]) -> list[RiskScore]:
    """The stored scores of these patient records, the latest discharge first."""
    rows = await session.scalars(
        select(RiskScore)
        .where(RiskScore.patient_id.in_(list(patient_ids)))
        .order_by(RiskScore.discharged_at.desc(), RiskScore.encounter_id, RiskScore.score)
    )
    return list(rows)


async def latest_scores(session: AsyncSession, patient_id: str, encounter_id: str | None) -> list[RiskScore]:
    """The scores of one discharge: `encounter_id`'s when it was scored, else the patient's latest."""
    if encounter_id is not None:
        rows = list(await session.scalars(select(RiskScore).where(RiskScore.encounter_id == encounter_id)))
        if rows:
            return rows
    latest = await session.scalar(
        select(RiskScore.encounter_id)
        .where(RiskScore.patient_id == patient_id)
        .order_by(RiskScore.discharged_at.desc(), RiskScore.encounter_id)
        .limit(1)
    )
    if latest is None:
        return []
    return list(await session.scalars(select(RiskScore).where(RiskScore.encounter_id == latest)))
