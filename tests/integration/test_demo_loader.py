"""The demo loads once per database: loading it again (as every `make dev --demo` restart does) starts
no second enrollment and texts the demo patient no second time, even once the first journey is over
(the demo journey lets a patient in again after they leave)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from aftercare.demo.loader import load_demo
from aftercare.settings import Settings
from api.app import create_app
from tests.conftest import AUTH_HEADERS, DEV_API_KEY
from tests.integration.test_observation_to_sms import _when, eventually
from tests.serving import serving

pytestmark = pytest.mark.usefixtures("worker", "empty_database")


@pytest.fixture
async def api_url(api_settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[str]:
    async with serving(create_app(api_settings, temporal=dev_server.client)) as url:
        yield url


async def test_loading_the_demo_again_sends_the_demo_sms_no_second_time(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, headers=AUTH_HEADERS) as api:

        async def enrollments(patient_id: str) -> list[dict[str, Any]]:
            answer = await api.get("/v1/enrollments", params={"patient_id": patient_id})
            items: list[dict[str, Any]] = answer.json()["items"]
            return items

        first = await asyncio.to_thread(load_demo, api_url, api_key=DEV_API_KEY)
        patient = first.patients[0]
        await eventually(
            lambda: _when(
                enrollments(patient), lambda items: bool(items) and items[0]["current_step"] == "await-reply"
            )
        )
        reply = {"type": "sms.reply", "patient_id": patient, "data": {"body": "YES"}}
        assert (await api.post("/v1/triggers", json=reply)).status_code == 202
        await eventually(lambda: _when(enrollments(patient), lambda items: items[0]["status"] == "completed"))

        second = await asyncio.to_thread(load_demo, api_url, api_key=DEV_API_KEY)
        await asyncio.sleep(1.0)  # time for a second text, were one on its way

        assert (first.triggered, second.triggered) == (1, 0)
        assert len(await enrollments(patient)) == 1
        texts = (await api.get("/v1/messages", params={"patient_id": patient})).json()["items"]
        assert sorted(text["body"].split(",")[0] for text in texts) == ["Hi Alfreda", "Thanks Alfreda"]
