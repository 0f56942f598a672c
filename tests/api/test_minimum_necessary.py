"""Minimum necessary: a role without `clinical:read` (marketing) sees how many patients a segment or a
campaign holds, never which ones, and no count from 1 to 10 ("<11"); a role with it still sees ids."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.population import store_patients, synthetic_patient

SEGMENTS = {
    "adults": {"age": {"gte": 18}},  # all 15
    "adult-women": {"all": [{"age": {"gte": 18}}, {"gender": {"eq": "female"}}]},  # 7
    "children": {"age": {"lt": 18}},  # none
}
WOMEN = sorted(f"cp-{index}" for index in range(1, 15, 2))


async def key_for(api: httpx.AsyncClient, *roles: str) -> dict[str, str]:
    made = await api.post("/v1/api-keys", json={"name": "-".join(roles), "roles": list(roles)})
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["key"]}


@pytest.fixture
async def segments(api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    await store_patients(sessions, [synthetic_patient(index) for index in range(15)])
    for key, criteria in SEGMENTS.items():
        assert (
            await api.post("/v1/segments", json={"key": key, "name": key, "criteria": criteria})
        ).status_code == 201
        assert (await api.post(f"/v1/segments/{key}/refresh")).status_code == 200


async def read(api: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = await api.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


@pytest.mark.usefixtures("segments")
async def test_marketing_previews_counts_without_patient_ids_and_no_small_counts(
    api: httpx.AsyncClient,
) -> None:
    marketing = await key_for(api, "marketing")

    adults = await read(api, "/v1/segments/adults/preview", marketing)
    women = await read(api, "/v1/segments/adult-women/preview", marketing)
    children = await read(api, "/v1/segments/children/preview", marketing)

    assert (adults["count"], adults["count_shown"], adults["sample"]) == (15, "15", [])
    assert (women["count"], women["count_shown"], women["sample"]) == (None, "<11", [])
    assert (children["count"], children["count_shown"], children["sample"]) == (0, "0", [])
    assert adults["redacted"] == women["redacted"] == ["sample"]
    assert [(c["path"], c["count"], c["count_shown"]) for c in women["criteria"]] == [
        ("criteria", None, "<11"),
        ("criteria.all[0]", 15, "15"),
        ("criteria.all[1]", None, "<11"),
    ]


@pytest.mark.usefixtures("segments")
async def test_marketing_reads_a_segments_member_count_without_its_members(api: httpx.AsyncClient) -> None:
    marketing = await key_for(api, "marketing")

    adults = await read(api, "/v1/segments/adults/members", marketing)
    women = await read(api, "/v1/segments/adult-women/members", marketing)

    assert (adults["members"], adults["count"], adults["count_shown"]) == ([], 15, "15")
    assert (women["members"], women["count"], women["count_shown"]) == ([], None, "<11")
    assert women["redacted"] == ["members"]


@pytest.mark.usefixtures("segments")
async def test_marketing_refreshing_a_segment_sees_small_counts_suppressed(api: httpx.AsyncClient) -> None:
    marketing = await key_for(api, "marketing")
    men = {"key": "adult-men", "name": "Men", "criteria": {"gender": {"eq": "male"}}}
    assert (await api.post("/v1/segments", json=men, headers=marketing)).status_code == 201

    refreshed = await api.post("/v1/segments/adult-men/refresh", headers=marketing)

    assert refreshed.status_code == 200
    assert (refreshed.json()["entered"], refreshed.json()["exited"]) == (None, 0)
    assert refreshed.json()["redacted"] == ["entered"]


@pytest.mark.usefixtures("segments")
async def test_a_role_with_clinical_read_still_sees_patient_ids_and_exact_counts(
    api: httpx.AsyncClient,
) -> None:
    clinical = await key_for(api, "marketing", "healthcare")

    preview = await read(api, "/v1/segments/adult-women/preview", clinical)
    members = await read(api, "/v1/segments/adult-women/members", clinical)

    assert (preview["count"], preview["count_shown"], preview["redacted"]) == (7, "7", [])
    assert sorted(preview["sample"]) == WOMEN
    assert [c["count"] for c in preview["criteria"]] == [7, 15, 7]
    assert (sorted(members["members"]), members["count"], members["redacted"]) == (WOMEN, 7, [])
