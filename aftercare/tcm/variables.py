"""What expressions and templates see of the programme: `%risk` / `risk` (the scores of the discharge
that triggered the enrollment, else of the patient's latest) and `%tcm` / `tcm` (its TCM episode)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.risk.bands import Bands
from aftercare.store.risk_scores import latest_scores
from aftercare.store.tcm_episodes import episode_for


def encounter_of(trigger: Mapping[str, Any] | None) -> str | None:
    """The id of a triggering Encounter."""
    if (
        trigger is not None
        and trigger.get("resourceType") == "Encounter"
        and isinstance(trigger.get("id"), str)
    ):
        return str(trigger["id"])
    return None


async def risk_variables(
    session: AsyncSession, patient_id: str, encounter_id: str | None, bands: Mapping[str, Bands]
) -> dict[str, Any]:
    """`{"lace": 12, "lace_band": "high", "band": "high", "encounter_id", "as_of", "components": {...}}`
    (`band` is LACE's); empty when no discharge was scored."""
    rows = await latest_scores(session, patient_id, encounter_id)
    if not rows:
        return {}
    found: dict[str, Any] = {"encounter_id": rows[0].encounter_id, "as_of": rows[0].as_of.isoformat()}
    for row in rows:
        found[row.score] = row.value
        found[f"{row.score}_band"] = bands[row.score].band(row.value)
        found[f"{row.score}_components"] = row.components
    found["band"] = found.get("lace_band")
    return found


async def tcm_variables(session: AsyncSession, patient_id: str, encounter_id: str | None) -> dict[str, Any]:
    """`{"episode_id", "contact_due", "visit_due", "complexity", "risk_band", "discharged_at"}` (ISO
    instants); empty without an episode."""
    episode = await episode_for(session, patient_id, encounter_id)
    if episode is None:
        return {}
    return {
        "episode_id": episode.id,
        "discharged_at": episode.discharged_at.isoformat(),
        "contact_due": episode.contact_due_at.isoformat(),
        "visit_due": episode.visit_due_at.isoformat(),
        "complexity": episode.complexity,
        "risk_band": episode.risk_band,
    }
