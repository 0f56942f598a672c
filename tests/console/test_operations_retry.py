"""Operations in a real browser: each channel's provider with what it took in the last 24 hours; a failed
export retried as a new export (its workflow started); a parked ADT message retried through the ADT
intake; an event parked until its patient arrives delivered by a retry; and a role without
`fhir:import` may not post a retry."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Browser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.bulk.export import create_export
from aftercare.bulk.launch import export_workflow_id
from aftercare.bulk.progress import set_status
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.hl7v2.server import intake_for
from aftercare.settings import Settings
from aftercare.store.fhir_sources import save_source
from models.adt_tables import AdtMessage
from models.tables import BulkImport, Message, ParkedItem, TriggerEvent
from tests.aftercare.hl7v2.samples import sample
from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, role_key, sign_in


def _message(status: str) -> Message:
    return Message(
        id=str(uuid.uuid4()),
        idempotency_key=f"ops-test:{uuid.uuid4()}",
        patient_id="p-maria",
        channel="sms",
        to="+16175550142",
        body="Hi",
        status=status,
        provider="outbox",
    )


async def test_each_channel_shows_its_provider_and_what_it_took(
    browser: Browser, console_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        session.add_all([_message("sent"), _message("delivered"), _message("failed")])
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/operations")
    cells = await page.locator("#provider-sms td").all_inner_texts()
    assert cells == ["sms", "outbox (kept here)", "ok", "2", "1", "0", "—"]
    assert (await page.locator("#provider-email td").all_inner_texts())[2] == "idle"
    assert await axe_violations(page) == []


async def test_a_failed_export_is_retried_as_a_new_export(
    browser: Browser,
    console_url: str,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
) -> None:
    async with sessions.begin() as session:
        await save_source(
            session,
            key="ehr",
            base_url="https://ehr.example.org/fhir",
            auth={},
            watched_types=[],
            poll_seconds=60,
        )
        failed = await create_export(session, source_key="ehr", full=True, types=["Patient"])
        failed_id = failed.id
        await set_status(session, failed_id, "failed", "the server answered 503")
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/operations")
    row = page.locator(f"#import-{failed_id}")
    assert "the server answered 503" in await row.inner_text()
    assert await axe_violations(page) == []
    await row.get_by_role("button", name="Retry").click()
    await page.wait_for_url(f"{console_url}/console/operations?retried=*")
    retried_id = page.url.split("retried=")[1].split("#")[0]
    assert retried_id != failed_id
    assert "pending" in await page.locator(f"#import-{retried_id}").inner_text()
    async with sessions() as session:
        retried = await session.get(BulkImport, retried_id)
    assert retried is not None
    assert retried.request["types"] == ["Patient"]
    assert retried.request["full"] is True
    handle = dev_server.client.get_workflow_handle(export_workflow_id(retried_id))
    assert (await handle.describe()).id == export_workflow_id(retried_id)
    await handle.terminate("the test only checks that it started")
    # the new export has not failed: it offers no retry
    assert await page.locator(f"#import-{retried_id}").get_by_role("button", name="Retry").count() == 0


async def test_a_parked_adt_message_is_retried_through_the_intake(
    browser: Browser,
    console_url: str,
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
) -> None:
    starter = EnrollmentStarter(sessions, dev_server.client, api_settings.temporal_task_queue)
    intake = intake_for(api_settings, sessions, dev_server.client, starter)
    handled = await intake.handle(sample("malformed_missing_pid3"))
    assert handled.code == "AE"
    async with sessions() as session:
        parked = (await session.scalars(select(AdtMessage))).one()
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/operations")
    row = page.locator(f"#adt-{parked.id}")
    assert "AE at PID-3" in await row.inner_text()
    await row.get_by_role("button", name="Retry").click()
    await page.wait_for_url(f"{console_url}/console/operations?adt=AE#adt")
    assert (
        await page.get_by_role("status").inner_text()
        == "The message was processed again: still refused (AE)."
    )
    assert "retried" in await page.locator(f"#adt-{parked.id}").inner_text()
    assert await axe_violations(page) == []


async def test_a_role_without_fhir_import_may_not_retry(browser: Browser, console_url: str) -> None:
    page = await sign_in(browser, console_url, await role_key(console_url, "marketing"))
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    for path in ("/console/operations/adt/1/retry", "/console/operations/imports/x/retry"):
        answer = await page.request.post(f"{console_url}{path}", form={"csrf": csrf or ""})
        assert answer.status == 403, path


async def test_an_event_parked_for_an_unknown_patient_is_delivered_once_the_patient_arrives(
    browser: Browser, console_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        event = {"type": "appointment.booked", "patient_id": "p-later", "id": "evt-later-1"}
        posted = await client.post("/v1/triggers", json=event)
        assert posted.json()["parked"]
    async with sessions() as session:
        [item] = (await session.scalars(select(ParkedItem))).all()
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/operations")
    await page.locator(f"#parked-{item.id}").get_by_role("button", name="Retry").click()
    await page.wait_for_url(f"{console_url}/console/operations?event=parked#parked")
    assert "still parked" in await page.get_by_role("status").inner_text()
    assert await page.locator(f"#parked-{item.id}").count() == 1

    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        later = {"resourceType": "Patient", "id": "p-later", "name": [{"given": ["Lee"], "family": "Later"}]}
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": later}]}
        assert (await client.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})).is_success
    await page.locator(f"#parked-{item.id}").get_by_role("button", name="Retry").click()
    await page.wait_for_url(f"{console_url}/console/operations?event=delivered#parked")
    assert await page.locator(f"#parked-{item.id}").count() == 0
    async with sessions() as session:
        delivered = await session.get(TriggerEvent, "evt-later-1")
    assert delivered is not None
    assert delivered.processed_at is not None
    assert await axe_violations(page) == []
