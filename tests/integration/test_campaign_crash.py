"""A worker killed in the middle of a campaign loses nothing and sends nothing twice.

The worker is a real process (`python worker.py`) on the dev server and the test database. It is
killed with SIGKILL while the campaign is sending (between or inside batches); a fresh worker finishes
the run. Every recipient ends up decided exactly once: one message, one decision, no one left open.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.campaign_tables import CampaignRecipient
from models.tables import Message, SendDecision
from tests.integration.test_worker_crash import WorkerProcess, worker_process  # noqa: F401
from tests.population import store_patients, synthetic_patient

AUDIENCE = 300


async def _count(sessions: async_sessionmaker[AsyncSession], query: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(query) or 0)


async def test_killing_the_worker_mid_campaign_loses_and_duplicates_nothing(
    api: httpx.AsyncClient,
    worker_process: WorkerProcess,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await store_patients(sessions, [synthetic_patient(i) for i in range(AUDIENCE)])
    body = "Hi {{ patient.given }}, your annual check-up is due. Reply STOP to opt out."
    assert (
        await api.post("/v1/templates", json={"key": "checkup", "channel": "sms", "body": body})
    ).status_code == 201
    segment = {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
    assert (await api.post("/v1/segments", json=segment)).status_code == 201
    campaign = {
        "key": "checkup",
        "name": "Annual check-up",
        "segment": "adults",
        "template": "checkup",
        "throttle": {"per_second": 40},
    }
    assert (await api.post("/v1/campaigns", json=campaign)).status_code == 201
    worker_process.start()
    assert (await api.post("/v1/campaigns/checkup/launch")).status_code == 202

    messages = select(func.count()).select_from(Message).where(Message.campaign_run_id == "checkup-v1")
    async with asyncio.timeout(60):
        while await _count(sessions, messages) == 0:
            await asyncio.sleep(0.05)
    worker_process.kill()
    sent_before_the_crash = await _count(sessions, messages)
    assert 0 < sent_before_the_crash < AUDIENCE
    await asyncio.sleep(2)
    worker_process.start()

    async with asyncio.timeout(120):
        while (await api.get("/v1/campaigns/checkup/results")).json()["status"] != "completed":
            await asyncio.sleep(0.25)

    results = (await api.get("/v1/campaigns/checkup/results")).json()["totals"]
    assert (results["targeted"], results["messaged"], results["sent"]) == (AUDIENCE, AUDIENCE, AUDIENCE)
    assert await _count(sessions, messages) == AUDIENCE
    assert (
        await _count(
            sessions,
            select(func.count(func.distinct(Message.patient_id))).where(
                Message.campaign_run_id == "checkup-v1"
            ),
        )
        == AUDIENCE
    )
    decisions = (
        select(func.count())
        .select_from(SendDecision)
        .where(SendDecision.idempotency_key.like("campaign:checkup-v1:%"))
    )
    assert await _count(sessions, decisions) == AUDIENCE
    still_open = (
        select(func.count())
        .select_from(CampaignRecipient)
        .where(CampaignRecipient.run_id == "checkup-v1", CampaignRecipient.state != "messaged")
    )
    assert await _count(sessions, still_open) == 0
    assert "Pat1 " not in worker_process.log_file.read_text()
