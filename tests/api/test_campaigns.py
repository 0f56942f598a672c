"""The campaign endpoints, with a real worker on the dev server: publish (JSON or YAML, versioned, 422
naming the problem), launch once, steer (pause, resume, cancel, with 409s when that cannot be done),
and a run's results in total and per A/B variant, with the reasons recipients were passed over."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from aftercare.store.consents import record_consent
from tests.population import store_patients, synthetic_patient

pytestmark = pytest.mark.usefixtures("worker")

YAML = {"content-type": "application/yaml"}
CAMPAIGN_YAML = """
key: flu-2026
name: Influenza vaccination 2026
segment: adults
variants:
  - {key: plain, template: flu-plain, weight: 1}
  - {key: urgent, template: flu-urgent, weight: 1}
send_window: {start: "00:00", end: "23:59"}
batch_size: 25
"""


async def _setup(api: httpx.AsyncClient) -> None:
    for key, body in (
        ("flu-plain", "Hi {{ patient.given }}, flu shots are in."),
        ("flu-urgent", "Flu is here."),
    ):
        response = await api.post("/v1/templates", json={"key": key, "channel": "sms", "body": body})
        assert response.status_code == 201, response.text
    segment = {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
    assert (await api.post("/v1/segments", json=segment)).status_code == 201


async def _finished(api: httpx.AsyncClient, key: str, limit: float = 60.0) -> dict[str, Any]:
    async with asyncio.timeout(limit):
        while True:
            response = await api.get(f"/v1/campaigns/{key}/results")
            if response.status_code == 200 and response.json()["status"] in (
                "completed",
                "cancelled",
                "failed",
            ):
                result: dict[str, Any] = response.json()
                return result
            await asyncio.sleep(0.2)


async def test_a_campaign_in_yaml_is_published_once_per_version(api: httpx.AsyncClient) -> None:
    await _setup(api)
    first = await api.post("/v1/campaigns", content=CAMPAIGN_YAML, headers=YAML)
    same = await api.post("/v1/campaigns", content=CAMPAIGN_YAML, headers=YAML)
    changed = await api.post(
        "/v1/campaigns",
        content=CAMPAIGN_YAML.replace("vaccination 2026", "vaccination 2026, revised"),
        headers=YAML,
    )
    assert (first.status_code, first.json()) == (201, {"key": "flu-2026", "version": 1})
    assert same.status_code == 200
    assert changed.status_code == 409
    listed = (await api.get("/v1/campaigns")).json()["items"]
    assert listed == [
        {
            "key": "flu-2026",
            "version": 1,
            "name": "Influenza vaccination 2026",
            "segment": "adults",
            "status": "draft",
            "recurring": None,
            "facility": None,
        }
    ]
    read = (await api.get("/v1/campaigns/flu-2026")).json()
    assert read["variants"][1] == {"key": "urgent", "template": "flu-urgent", "weight": 1.0}
    assert read["expires_after"] == "P7D"


async def test_a_campaign_that_refers_to_what_does_not_exist_answers_422_naming_it(
    api: httpx.AsyncClient,
) -> None:
    await _setup(api)
    await api.post(
        "/v1/templates", json={"key": "promo", "channel": "sms", "body": "x", "purpose": "marketing"}
    )
    response = await api.post(
        "/v1/campaigns",
        json={
            "key": "broken",
            "name": "Broken",
            "segment": "nobody",
            "variants": [{"key": "a", "template": "flu-plain"}, {"key": "b", "template": "missing"}],
            "channel": "email",
        },
    )
    assert response.status_code == 422
    problems = {tuple(item["loc"]): item["msg"] for item in response.json()["detail"]}
    assert problems == {
        ("body", "segment"): "segment 'nobody' does not exist; publish it first",
        ("body", "variants", 0, "channel"): "template 'flu-plain' has no email variant (it has sms)",
        ("body", "variants", 1, "template"): "template 'missing' does not exist; publish it first",
    }
    conflict = await api.post(
        "/v1/campaigns",
        json={
            "key": "promo",
            "name": "P",
            "segment": "adults",
            "template": "promo",
            "purpose": "health_education",
        },
    )
    assert conflict.status_code == 422
    assert conflict.json()["detail"][0]["loc"] == ["body", "purpose"]
    shape = await api.post(
        "/v1/campaigns",
        json={"key": "x", "name": "X", "segment": "adults", "template": "flu-plain", "throttle": {}},
    )
    assert shape.status_code == 422
    assert shape.json()["detail"][0]["loc"] == ["body", "throttle"]


async def test_a_launched_campaign_reports_its_results_per_variant_and_why_some_were_passed_over(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _setup(api)
    patients = [synthetic_patient(i) for i in range(60)] + [synthetic_patient(60, phone=False)]
    await store_patients(sessions, patients)
    async with sessions.begin() as session:
        await record_consent(session, ["cp-7"], "*", "revoked", "patient portal")
    assert (await api.post("/v1/campaigns", content=CAMPAIGN_YAML, headers=YAML)).status_code == 201

    launched = await api.post("/v1/campaigns/flu-2026/launch")
    again = await api.post("/v1/campaigns/flu-2026/launch")
    assert launched.status_code == 202, launched.text
    assert launched.json() == {
        "key": "flu-2026",
        "version": 1,
        "status": "launched",
        "run_id": "flu-2026-v1",
        "schedule_id": None,
    }
    assert (again.status_code, again.json()["run_id"]) == (200, "flu-2026-v1")

    results = await _finished(api, "flu-2026")
    totals = results["totals"]
    assert results["status"] == "completed"
    assert results["audience"] == 61
    assert (totals["targeted"], totals["messaged"], totals["sent"]) == (61, 59, 59)
    assert (totals["suppressed"], totals["skipped"], totals["pending"], totals["failed"]) == (1, 1, 0, 0)
    assert sum(v["targeted"] for v in results["variants"].values()) == 61
    assert set(results["variants"]) == {"plain", "urgent"}
    reasons = {(r["state"], r["rule"]): r for r in results["passed_over"]}
    assert reasons[("skipped", "reachability")]["reason"] == "the patient has no phone number"
    assert reasons[("suppressed", "consent")]["count"] == 1
    assert results["redacted"] == []

    # Marketing (no clinical:read) sees the same results with every count from 1 to 10 left out.
    made = await api.post("/v1/api-keys", json={"name": "marketing", "roles": ["marketing"]})
    marketing = {"X-API-Key": made.json()["key"]}
    shown = (await api.get("/v1/campaigns/flu-2026/results", headers=marketing)).json()
    assert (shown["audience"], shown["totals"]["targeted"], shown["totals"]["sent"]) == (61, 61, 59)
    assert (shown["totals"]["suppressed"], shown["totals"]["skipped"], shown["totals"]["pending"]) == (
        None,
        None,
        0,
    )
    assert {"totals.suppressed", "totals.skipped", "passed_over.0.count"} <= set(shown["redacted"])
    assert [reason["count"] for reason in shown["passed_over"]] == [None, None]

    messages = (await api.get("/v1/messages?patient_id=cp-3")).json()["items"]
    assert messages[0]["campaign_run_id"] == "flu-2026-v1"
    runs = (await api.get("/v1/campaigns/flu-2026/runs")).json()["items"]
    assert [(run["run_id"], run["status"]) for run in runs] == [("flu-2026-v1", "completed")]
    assert (await api.post("/v1/campaigns/flu-2026/pause")).status_code == 409
    assert (await api.get("/v1/campaigns/flu-2026/runs/other")).status_code == 404


async def test_a_campaign_is_paused_resumed_and_cancelled_through_the_api(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _setup(api)
    await store_patients(sessions, [synthetic_patient(i) for i in range(40)])
    document = {
        "key": "slow",
        "name": "Slow",
        "segment": "adults",
        "template": "flu-plain",
        "throttle": {"per_second": 2},
    }
    assert (await api.post("/v1/campaigns", json=document)).status_code == 201
    assert (await api.post("/v1/campaigns/slow/resume")).status_code == 409  # not launched
    assert (await api.post("/v1/campaigns/slow/launch")).status_code == 202

    paused = await api.post("/v1/campaigns/slow/pause", json={"reason": "wrong clinic name"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["run_status"] == "paused"
    assert (await api.post("/v1/campaigns/slow/pause")).status_code == 409
    run = (await api.get("/v1/campaigns/slow/results")).json()
    assert (run["status"], run["phase"]) == ("paused", "Paused: wrong clinic name")

    resumed = await api.post("/v1/campaigns/slow/resume")
    assert resumed.json()["run_status"] == "running"
    cancelled = await api.post("/v1/campaigns/slow/cancel")
    assert cancelled.status_code == 202
    results = await _finished(api, "slow")
    assert results["status"] == "cancelled"
    assert results["totals"]["cancelled"] > 0
    assert results["totals"]["messaged"] + results["totals"]["cancelled"] == 40
    assert (await api.post("/v1/campaigns/slow/launch")).status_code == 409
    assert (await api.post("/v1/campaigns/slow/cancel")).status_code == 409
    listed = {item["key"]: item["status"] for item in (await api.get("/v1/campaigns")).json()["items"]}
    assert listed == {"slow": "cancelled"}


async def test_a_recurring_campaign_is_a_temporal_schedule_whose_runs_each_freeze_their_audience(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], dev_server: WorkflowEnvironment
) -> None:
    await _setup(api)
    await store_patients(sessions, [synthetic_patient(i) for i in range(5)])
    document = {
        "key": "weekly-tip",
        "name": "Weekly health tip",
        "segment": "adults",
        "template": "flu-plain",
        "schedule": {"every": "P7D"},
    }
    assert (await api.post("/v1/campaigns", json=document)).status_code == 201
    launched = await api.post("/v1/campaigns/weekly-tip/launch")
    assert launched.status_code == 202
    assert launched.json()["schedule_id"] == "campaign-weekly-tip-v1"
    schedule = dev_server.client.get_schedule_handle("campaign-weekly-tip-v1")

    await schedule.trigger()
    async with asyncio.timeout(60):
        while (
            not (runs := (await api.get("/v1/campaigns/weekly-tip/runs")).json()["items"])
            or runs[0]["status"] != "completed"
        ):
            await asyncio.sleep(0.2)
    [run] = runs
    assert run["run_id"].startswith("weekly-tip-v1-")  # the schedule adds the scheduled time
    assert (run["audience"], run["segment_version"]) == (5, 1)
    results = (await api.get(f"/v1/campaigns/weekly-tip/runs/{run['run_id']}")).json()
    assert results["totals"]["sent"] == 5

    assert (await api.post("/v1/campaigns/weekly-tip/pause", json={"reason": "holiday"})).status_code == 200
    assert (await schedule.describe()).schedule.state.paused
    assert (await api.post("/v1/campaigns/weekly-tip/resume")).status_code == 200
    assert not (await schedule.describe()).schedule.state.paused
    assert (await api.post("/v1/campaigns/weekly-tip/cancel")).status_code == 202
    with pytest.raises(RPCError):
        await schedule.describe()
    listed = {item["key"]: item for item in (await api.get("/v1/campaigns")).json()["items"]}
    assert (listed["weekly-tip"]["status"], listed["weekly-tip"]["recurring"]) == ("cancelled", "P7D")
