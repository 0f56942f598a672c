"""Readmission risk scores to the chart: after resources arrive, each score of a discharge of the last
30 days of the patients whose data changed starts a `FhirWriteBack` workflow, named by the discharge,
the score and its `as_of`, so a score is written once per version (an unchanged score keeps its
`as_of` and its workflow id)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from aftercare.fhir.references import patient_id_of
from aftercare.store.risk_scores import affects_scores, scores_of
from aftercare.tcm.progress import READMISSION_DAYS
from models.temporal import WriteBackInput, WriteBackRiskInput
from models.workflow_names import FHIR_WRITE_BACK_PREFIX, FHIR_WRITE_BACK_WORKFLOW


async def write_risk_back(
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    task_queue: str,
    resources: Sequence[dict[str, Any]],
) -> int:
    """Start the write-back of the current scores of the patients these resources touch; returns how
    many workflows were started (the others were written already)."""
    patients = sorted(
        {p for r in resources if affects_scores(r) for p in [patient_id_of(r)] if p is not None}
    )
    if not patients:
        return 0
    since = datetime.now(UTC) - timedelta(days=READMISSION_DAYS)
    async with sessions() as session:
        rows = [
            (row.encounter_id, row.score, row.as_of)
            for row in await scores_of(session, patients)
            if row.discharged_at >= since
        ]
    started = 0
    for encounter_id, score, as_of in rows:
        version = int(as_of.timestamp() * 1_000_000)
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                FHIR_WRITE_BACK_WORKFLOW,
                WriteBackInput(risk=WriteBackRiskInput(encounter_id=encounter_id, score=score)),
                id=f"{FHIR_WRITE_BACK_PREFIX}risk-{encounter_id}-{score}-{version}",
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            started += 1
    return started
