"""The analytics endpoints count within the caller's facilities: a key of one facility sees its own
patients' enrollments and messages only (a filtered funnel too), the whole group sees both; a role without `analytics:read` is
refused."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.fold import fold
from tests.api.test_facilities import JOURNEY, Side, _keys, sides

pytestmark = pytest.mark.usefixtures("worker")
__all__ = ["sides"]  # the fixture, used by name below


async def test_a_facility_key_counts_its_own_facility_only(
    api: httpx.AsyncClient, sides: tuple[Side, Side], engine: AsyncEngine
) -> None:
    north = {"X-API-Key": (await _keys(api, "north-hospital"))["marketing"]}
    funnel_path = f"/v1/analytics/journeys/{JOURNEY['key']}/funnel"

    north_funnel = (await api.get(funnel_path, headers=north)).json()
    group_funnel = (await api.get(funnel_path)).json()
    north_sms = (
        await api.get("/v1/analytics/messages", params={"group_by": "channel"}, headers=north)
    ).json()
    group_sms = (await api.get("/v1/analytics/messages", params={"group_by": "channel"})).json()

    assert (north_funnel["entered"], group_funnel["entered"]) == (1, 2)
    # The segment and channel filters count within the caller's facilities too.
    filters = {"segment": "_none", "channel": "sms"}
    north_filtered = (await api.get(funnel_path, params=filters, headers=north)).json()
    group_filtered = (await api.get(funnel_path, params=filters)).json()
    assert [(s["id"], s["passed"]) for s in north_filtered["steps"]] == [("hello", 1)]
    assert [(s["id"], s["passed"]) for s in group_filtered["steps"]] == [("hello", 2)]
    assert (await api.get(funnel_path, params={"segment": "everyone"}, headers=north)).json()["entered"] == 0
    hello = [step for step in north_funnel["steps"] if step["id"] == "hello"]
    assert [(step["passed"], step["results"]) for step in hello] == [(1, {"sent": 1})]
    assert [(row["key"], row["messages"], row["sent"]) for row in north_sms["rows"]] == [("sms", 1, 1)]
    assert [(row["key"], row["messages"], row["sent"]) for row in group_sms["rows"]] == [("sms", 2, 2)]
    # The same once the deltas are folded into the rollups (both are scoped by facility).
    await fold(engine)
    folded_north = (
        await api.get("/v1/analytics/messages", params={"group_by": "channel"}, headers=north)
    ).json()
    assert folded_north["rows"] == north_sms["rows"]
    assert (await api.get(funnel_path, headers=north)).json()["entered"] == 1


async def test_a_role_without_analytics_read_is_refused(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    keys = await _keys(api, "north-hospital")

    for role, expected in (("non_clinical", 403), ("fhir_admin", 403), ("event_planner", 200)):
        answer = await api.get("/v1/analytics/messages", headers={"X-API-Key": keys[role]})
        assert (role, answer.status_code) == (role, expected)


async def test_an_unknown_grouping_is_a_422(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/analytics/messages", params={"group_by": "patient"})

    assert answer.status_code == 422
