"""A run's frozen audience: the segment's members at launch, one contiguous range of ordinals per
time zone, each with the A/B variant its weights give (the SQL and the Python rule agree)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.campaigns.audience import close_open_recipients, freeze_audience, variant_for, zone_ranges
from models.campaign import CampaignDefinition
from models.campaign_tables import CampaignRecipient
from models.segment import SegmentDefinition
from tests.population import store_patients, synthetic_patient

ADULTS = SegmentDefinition.model_validate(
    {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
)
AB = CampaignDefinition.model_validate(
    {
        "key": "ab",
        "name": "A/B",
        "segment": "adults",
        "variants": [
            {"key": "a", "template": "t-a", "weight": 1},
            {"key": "b", "template": "t-b", "weight": 2},
            {"key": "c", "template": "t-c", "weight": 1},
        ],
    }
)
ZONES = ["America/Chicago", "America/New_York", "Pacific/Honolulu", None]


@pytest.mark.usefixtures("empty_database")
async def test_the_audience_is_frozen_by_zone_with_each_patients_variant(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await store_patients(sessions, [synthetic_patient(i, zone=ZONES[i % 4]) for i in range(400)])
    await store_patients(sessions, [synthetic_patient(1000, birth_date="2019-03-01")])
    async with sessions.begin() as session:
        frozen = await freeze_audience(session, "run-1", AB, ADULTS, datetime.now(UTC), "America/New_York")
        zones = await zone_ranges(session, "run-1")
    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(CampaignRecipient)
                .where(CampaignRecipient.run_id == "run-1")
                .order_by(CampaignRecipient.ordinal)
            )
        )

    assert frozen == 400
    assert [r.ordinal for r in rows] == list(range(1, 401))
    # Patients without a zone are the hospital's; each zone is one contiguous range.
    assert [(z.zone, z.count) for z in zones] == [
        ("America/Chicago", 100),
        ("America/New_York", 200),
        ("Pacific/Honolulu", 100),
    ]
    for zone in zones:
        assert {r.zone for r in rows[zone.first - 1 : zone.last]} == {zone.zone}
    assert all(r.variant == variant_for(AB, r.patient_id) for r in rows)
    shares = Counter(r.variant for r in rows)
    assert 60 < shares["a"] < 140
    assert 150 < shares["b"] < 250
    assert 60 < shares["c"] < 140


@pytest.mark.usefixtures("empty_database")
async def test_closing_a_run_marks_only_the_open_recipients(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await store_patients(sessions, [synthetic_patient(i) for i in range(5)])
    async with sessions.begin() as session:
        await freeze_audience(session, "run-2", AB, ADULTS, datetime.now(UTC), "America/New_York")
        first = await session.get(CampaignRecipient, ("run-2", 1))
        assert first is not None
        first.state = "messaged"
    async with sessions.begin() as session:
        closed = await close_open_recipients(session, "run-2", "expired", "too late")
    assert closed == 4
