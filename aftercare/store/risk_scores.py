"""Risk scores kept in step with the patient's FHIR data: every inpatient discharge of a patient whose
Encounters, Conditions, Procedures or haemoglobin/sodium results changed is scored again (LACE, and
HOSPITAL where its inputs exist), and a stored score changes (with its `as_of`) only when
its value, components or algorithm do; each recent discharge's TCM episode is opened or brought up to date
with it. Runs in the transaction that stored the resources. Bands (`RISK_BANDS`) and the zone of a patient
in no facility (`HOSPITAL_TIMEZONE`) come from the process settings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.clinical.facts import COMPONENT_SEPARATOR, tokens
from aftercare.facilities.voice import voices_of
from aftercare.fhir.references import patient_id_of
from aftercare.risk.charlson import Condition
from aftercare.risk.discharges import Visit, visit_of
from aftercare.risk.hospital import HAEMOGLOBIN, SODIUM, Measurement, Performed, hospital
from aftercare.risk.lace import DatedCondition, lace
from aftercare.risk.scores import Score
from aftercare.settings import get_settings
from aftercare.store.tcm_episodes import Discharged, open_episodes
from aftercare.zones import zone_info
from models.risk_tables import RiskScore
from models.tables import ClinicalCondition, ClinicalObservation, ClinicalProcedure, FhirResource, table_of

# Resource types a score reads: a change to one of them scores the patient's discharges again.
SCORED_FROM = frozenset({"Encounter", "Condition", "Procedure"})
LABORATORY = HAEMOGLOBIN | SODIUM
REFUTED = frozenset({"refuted", "entered-in-error"})
_CHUNK = 1000

_TABLE = table_of(RiskScore)


def _upsert() -> Any:
    statement = insert(_TABLE)
    changed = ("value", "components", "algorithm", "discharged_at", "patient_id")
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.encounter_id, _TABLE.c.score],
        set_={**{name: statement.excluded[name] for name in changed}, "as_of": func.now()},
        where=or_(*(_TABLE.c[name].is_distinct_from(statement.excluded[name]) for name in changed)),
    )


_UPSERT = _upsert()


async def record_risk_scores(session: AsyncSession, resources: Sequence[dict[str, Any]]) -> int:
    """Score again the discharges of the patients these current resources touch; returns how many
    discharges were scored."""
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
    """Score every inpatient discharge of these patients; drop scores of encounters no longer discharges."""
    scored = 0
    for start in range(0, len(patient_ids), _CHUNK):
        scored += await _rescore_chunk(session, list(patient_ids[start : start + _CHUNK]))
    return scored


async def _rescore_chunk(session: AsyncSession, patient_ids: list[str]) -> int:
    if not patient_ids:
        return 0
    visits = await _visits(session, patient_ids)
    if not any(visit.is_discharge for patient in visits.values() for visit in patient):
        await session.execute(delete(RiskScore).where(RiskScore.patient_id.in_(patient_ids)))
        return 0
    conditions = await _conditions(session, patient_ids)
    measurements = await _measurements(session, patient_ids)
    procedures = await _procedures(session, patient_ids)
    voices = await voices_of(session, patient_ids)
    settings = get_settings()
    lace_bands = settings.bands["lace"]
    rows: list[dict[str, Any]] = []
    discharged: list[Discharged] = []
    for patient_id, patient_visits in visits.items():
        voice = voices.get(patient_id)
        zone = zone_info(voice.timezone if voice is not None else settings.hospital_timezone)
        for stay in patient_visits:
            if stay.is_discharge and stay.end is not None:
                score = lace(stay, patient_visits, conditions.get(patient_id, []), zone)
                rows.append(_row(patient_id, stay.end, score))
                band = lace_bands.band(score.value)
                other = hospital(
                    stay,
                    patient_visits,
                    measurements.get(patient_id, []),
                    procedures.get(patient_id, []),
                    zone,
                )
                if other is not None:
                    rows.append(_row(patient_id, stay.end, other))
                discharged.append(
                    Discharged(
                        patient_id, score.encounter_id, stay.end, band, voice, settings.hospital_timezone
                    )
                )
    kept = [(row["encounter_id"], row["score"]) for row in rows]
    stale = delete(RiskScore).where(RiskScore.patient_id.in_(patient_ids))
    if kept:
        stale = stale.where(tuple_(RiskScore.encounter_id, RiskScore.score).not_in(kept))
    await session.execute(stale)
    if rows:
        await session.execute(_UPSERT, rows)
    await open_episodes(session, discharged, datetime.now(UTC))
    return len(rows)


def _row(patient_id: str, discharged_at: datetime, score: Score) -> dict[str, Any]:
    return {
        "encounter_id": score.encounter_id,
        "score": score.score,
        "patient_id": patient_id,
        "value": score.value,
        "components": score.components_json(),
        "algorithm": score.algorithm,
        "discharged_at": discharged_at,
    }


# The elements of an Encounter the scores read: only they are taken out of the stored JSON.
_VISIT_ELEMENTS = ("id", "status", "class", "period", "priority", "hospitalization", "serviceType")
_VISIT_PARTS = func.jsonb_build_object(
    *(part for name in _VISIT_ELEMENTS for part in (name, FhirResource.content.op("->")(name)))
)


async def _visits(session: AsyncSession, patient_ids: list[str]) -> dict[str, list[Visit]]:
    rows = await session.execute(
        select(FhirResource.patient_id, _VISIT_PARTS).where(
            FhirResource.resource_type == "Encounter", FhirResource.patient_id.in_(patient_ids)
        )
    )
    visits: dict[str, list[Visit]] = defaultdict(list)
    for patient_id, content in rows:
        if content.get("status") != "entered-in-error":
            visits[patient_id].append(visit_of(content))
    return visits


async def _measurements(session: AsyncSession, patient_ids: list[str]) -> dict[str, list[Measurement]]:
    table = ClinicalObservation
    rows = await session.execute(
        select(
            table.patient_id,
            table.resource_id,
            table.codes,
            table.value_number,
            table.value_unit,
            table.effective_at,
        ).where(
            table.patient_id.in_(patient_ids),
            table.codes.op("&&")(cast(sorted(LABORATORY), ARRAY(String))),
            table.value_number.is_not(None),
            table.effective_at.is_not(None),
            table.status.not_in(["cancelled", "entered-in-error", "preliminary"]),
        )
    )
    found: dict[str, list[Measurement]] = defaultdict(list)
    for patient_id, resource_id, codes, value, unit, at in rows:
        reference = f"Observation/{resource_id.partition(COMPONENT_SEPARATOR)[0]}"
        found[patient_id].append(Measurement(reference, tuple(codes), value, unit, at))
    return found


async def _procedures(session: AsyncSession, patient_ids: list[str]) -> dict[str, list[Performed]]:
    rows = await session.execute(
        select(
            ClinicalProcedure.patient_id, ClinicalProcedure.resource_id, ClinicalProcedure.performed_at
        ).where(
            ClinicalProcedure.patient_id.in_(patient_ids),
            ClinicalProcedure.performed_at.is_not(None),
            ClinicalProcedure.status.not_in(["not-done", "entered-in-error", "preparation"]),
        )
    )
    found: dict[str, list[Performed]] = defaultdict(list)
    for patient_id, resource_id, at in rows:
        found[patient_id].append(Performed(f"Procedure/{resource_id}", at))
    return found


async def _conditions(session: AsyncSession, patient_ids: list[str]) -> dict[str, list[DatedCondition]]:
    rows = await session.execute(
        select(
            ClinicalCondition.patient_id,
            ClinicalCondition.resource_id,
            ClinicalCondition.codes,
            ClinicalCondition.verification_status,
            ClinicalCondition.onset_at,
            ClinicalCondition.recorded_at,
        ).where(ClinicalCondition.patient_id.in_(patient_ids))
    )
    found: dict[str, list[DatedCondition]] = defaultdict(list)
    for row in rows:
        if row.verification_status in REFUTED:
            continue
        condition = Condition(reference=f"Condition/{row.resource_id}", codes=tuple(row.codes))
        found[row.patient_id].append(DatedCondition(condition, row.onset_at or row.recorded_at))
    return found


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
