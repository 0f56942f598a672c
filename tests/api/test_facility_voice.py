"""Messages go out in the patient's facility's voice: a campaign over two facilities sends each patient's
SMS from their own facility's number, in their own facility's quiet hours and time zone; a campaign
launched by a caller of one facility reaches only that facility's patients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.campaign_tables import CampaignRecipient
from tests.api.test_facilities import GROUP, NORTH, SOUTH, bundle, patient
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

NORTH_ID, SOUTH_ID = "voice-north", "voice-south"
CAMPAIGN = {
    "key": "check-up",
    "name": "Check-up reminder",
    "segment": "everyone",
    "template": "check-up",
    "send_window": {"start": "00:00", "end": "23:59"},
}


def _window_around(now: datetime, zone: str, before: timedelta, after: timedelta) -> str:
    local = now.astimezone(ZoneInfo(zone))
    return f"{(local - before):%H:%M}-{(local + after):%H:%M}"


async def _group(api: httpx.AsyncClient, now: datetime, campaign: str = "check-up") -> str:
    """North is in its quiet hours now (on New York's clock); South is not (on Los Angeles's)."""
    north_quiet = _window_around(now, "America/New_York", timedelta(hours=1), timedelta(hours=2))
    south_quiet = _window_around(now, "America/Los_Angeles", timedelta(hours=-5), timedelta(hours=6))
    for facility in (GROUP, {**NORTH, "quiet_hours": north_quiet}, {**SOUTH, "quiet_hours": south_quiet}):
        made = await api.post("/v1/facilities", json=facility)
        assert made.status_code == 201, made.text
    imported = await api.post(
        "/v1/fhir/import",
        params={"triggers": "false"},
        json=bundle(
            patient(NORTH_ID, "Nora", "+12125550131", "Organization/north"),
            patient(SOUTH_ID, "Sol", "+13105550132", "Organization/south"),
        ),
    )
    assert imported.status_code == 200, imported.text
    template = {"key": "check-up", "channel": "sms", "body": "Hi {{ patient.given }}, time for a check-up."}
    assert (await api.post("/v1/templates", json=template)).status_code == 201
    segment = {"key": "everyone", "name": "Everyone", "criteria": {"age": {"gte": 0}}}
    assert (await api.post("/v1/segments", json=segment)).status_code == 201
    # Each test its own campaign key: run ids (and their workflow ids) are never reused.
    assert (await api.post("/v1/campaigns", json={**CAMPAIGN, "key": campaign})).status_code == 201
    return north_quiet


async def _recipients(sessions: async_sessionmaker[AsyncSession]) -> dict[str, CampaignRecipient]:
    async with sessions() as session:
        rows = await session.scalars(select(CampaignRecipient))
        return {row.patient_id: row for row in rows}


async def test_a_campaign_over_two_facilities_speaks_as_each_patient_s_facility(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    north_quiet = await _group(api, now)
    assert (await api.post("/v1/campaigns/check-up/launch")).status_code == 202

    async def south_sent() -> dict[str, Any] | None:
        items = (await api.get("/v1/messages", params={"patient_id": SOUTH_ID})).json()["items"]
        return items[0] if items else None

    south = await eventually(south_sent)
    assert (south["sender"], south["facility"], south["status"]) == ("+15005550002", "south-clinic", "sent")
    assert south["body"] == "Hi Sol, time for a check-up."

    async def north_deferred() -> CampaignRecipient | None:
        row = (await _recipients(sessions)).get(NORTH_ID)
        return row if row is not None and row.state == "deferred" else None

    north = await north_deferred() or await eventually(north_deferred)
    assert north.reason == "quiet hours in America/New_York"
    assert north.zone == "America/New_York"
    end = datetime.strptime(north_quiet.split("-")[1], "%H:%M").time()
    assert north.defer_until is not None
    assert north.defer_until.astimezone(ZoneInfo("America/New_York")).time() == end
    assert (await api.get("/v1/messages", params={"patient_id": NORTH_ID})).json()["items"] == []
    assert (await _recipients(sessions))[SOUTH_ID].zone == "America/Los_Angeles"
    assert (await api.post("/v1/campaigns/check-up/cancel")).status_code in (200, 202)


async def test_a_campaign_launched_by_one_facility_reaches_only_its_patients(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _group(api, datetime.now(UTC) + timedelta(hours=12), "south-check-up")  # nobody in quiet hours
    made = await api.post(
        "/v1/api-keys", json={"name": "south-mkt", "roles": ["marketing"], "facilities": ["south-clinic"]}
    )
    south_marketing = {"X-API-Key": made.json()["key"]}
    launched = await api.post("/v1/campaigns/south-check-up/launch", headers=south_marketing)
    assert launched.status_code == 202, launched.text

    async def frozen() -> dict[str, CampaignRecipient] | None:
        rows = await _recipients(sessions)
        return rows or None

    recipients = await eventually(frozen)
    assert set(recipients) == {SOUTH_ID}
    await api.post("/v1/campaigns/south-check-up/cancel")
