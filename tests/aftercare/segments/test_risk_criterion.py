"""The `risk` criterion: the score of the patient's latest scored discharge up to the evaluation time
(`{score: lace, gte: 10}`), optionally within a discharge window; explained in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.segments.evaluate import members
from aftercare.segments.explain import describe
from models.risk_tables import RiskScore
from models.segment import SegmentDefinition
from models.tables import Patient

AS_OF = datetime(2025, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def segment(criteria: dict[str, Any]) -> SegmentDefinition:
    return SegmentDefinition.model_validate({"key": "risky", "name": "risky", "criteria": criteria})


def score(patient_id: str, encounter: str, value: int, days_ago: float, kind: str = "lace") -> RiskScore:
    return RiskScore(
        encounter_id=encounter,
        score=kind,
        patient_id=patient_id,
        value=value,
        components={},
        algorithm="test",
        discharged_at=AS_OF - days_ago * DAY,
    )


@pytest.fixture
async def scored(sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine) -> None:
    """ann: LACE 4 a year ago, 12 three days ago; bob: 14 last month, 6 yesterday; cy: 11 only after
    the evaluation time; dee: never scored."""
    async with sessions.begin() as session:
        session.add_all([Patient(id=name, version_id="1") for name in ("ann", "bob", "cy", "dee")])
        session.add_all(
            [
                score("ann", "a1", 4, 365),
                score("ann", "a2", 12, 3),
                score("bob", "b1", 14, 30),
                score("bob", "b2", 6, 1),
                score("bob", "b2", 3, 1, kind="hospital"),
                score("cy", "c1", 11, -2),
            ]
        )


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"risk": {"score": "lace", "gte": 10}}, ["ann"]),
        ({"risk": {"gte": 5, "lt": 10}}, ["bob"]),  # bob's latest, not his older 14
        ({"risk": {"gte": 10, "discharged_within": "P2D"}}, []),
        ({"risk": {"gte": 0, "discharged_within": "P2D"}}, ["bob"]),
        ({"risk": {"score": "hospital", "lte": 4}}, ["bob"]),
        ({"not": {"risk": {"gte": 0}}}, ["cy", "dee"]),  # cy's score is after the evaluation time
    ],
)
async def test_the_latest_discharges_score_decides(
    sessions: async_sessionmaker[AsyncSession], scored: None, criteria: dict[str, Any], expected: list[str]
) -> None:
    async with sessions() as session:
        assert await members(session, segment(criteria), AS_OF) == expected


def test_the_criterion_is_explained_and_checked() -> None:
    criterion = segment({"risk": {"score": "lace", "gte": 10, "discharged_within": "P30D"}}).criteria
    assert describe(criterion) == "latest LACE score ≥ 10 discharged in the last P30D"
    with pytest.raises(ValidationError):
        segment({"risk": {"score": "lace"}})  # no comparison
    with pytest.raises(ValidationError):
        segment({"risk": {"score": "charlson", "gte": 1}})
