"""The preference centre: consent per channel and purpose, preferred channel and language, quiet
hours and a pause, opened by a signed link; a change blocks the next send decision, shows in the
consent history, the decision log and the audit trail; bad input gets errors next to the fields and
writes nothing. And in a browser, with axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.send import MessagingActivities
from aftercare.patient_links.preferences import CONSENT_CHANNELS
from aftercare.patient_links.tokens import patient_links
from aftercare.settings import Settings
from api.app import create_app
from models.journey import PURPOSES, SendSpec
from models.temporal import SendMessageResult
from tests.browser import chromium, offline_except
from tests.conftest import ABDUL_PATIENT_ID
from tests.console.conftest import axe_violations
from tests.helpers import ingest_patient, load_synthea_patient, send_request, with_email
from tests.serving import serving

FORM = {"content-type": "application/x-www-form-urlencoded"}
EVERYTHING_BUT_MARKETING = [f"{c}:{p}" for c in CONSENT_CHANNELS for p in PURPOSES if p != "marketing"]


async def abdul(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    """Abdul, with an email address, and the path of his preference centre link."""
    patient = await load_synthea_patient(sessions)
    await ingest_patient(sessions, with_email(patient, "abdul@example.org"))
    token, _ = patient_links(settings).token("preferences", ABDUL_PATIENT_ID, "care_coordination")
    return f"/p/{token}"


def body(allow: list[str], **fields: str) -> str:
    values = {"channel": "", "language": "en", "quiet_start": "", "quiet_end": "", "pause_days": ""}
    values.update(fields)
    return urlencode([("allow", value) for value in allow] + list(values.items()))


async def send(sessions: async_sessionmaker[AsyncSession], channel: str, step: str) -> SendMessageResult:
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    spec = SendSpec(channel=channel, subject="Follow-up" if channel == "email" else None, body="Hello")
    return await ActivityEnvironment().run(activities.send_message, send_request(spec, step=step))


async def test_a_withdrawn_consent_blocks_the_next_send_and_shows_in_history_log_and_audit(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    path = await abdul(sessions, api_settings)
    before = await api.get(path)
    assert (await send(sessions, "email", "first")).status == "sent"
    withdrawn = ("email:care_coordination", "voice:care_coordination")
    chosen = [value for value in EVERYTHING_BUT_MARKETING if value not in withdrawn]

    posted = await api.post(
        path, content=body(chosen, language="es", quiet_start="21:00", quiet_end="08:00"), headers=FORM
    )
    after = await api.get(posted.headers["location"])
    blocked = await send(sessions, "email", "second")
    consents = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents")).json()
    decisions = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/decisions")).json()["items"]
    audit = (await api.get("/v1/audit", params={"resource_id": ABDUL_PATIENT_ID})).json()["items"]

    assert before.status_code == 200
    assert 'id="allow-email-care_coordination"' in before.text
    assert 'id="allow-voice-care_coordination"' in before.text  # calls are asked about too
    assert 'value="email:care_coordination"\n             checked' in before.text
    assert posted.status_code == 303
    assert "Sus preferencias se guardaron." in after.text
    assert 'lang="es"' in after.text
    assert blocked.status == "skipped"
    assert (decisions[0]["decision"], decisions[0]["rule"]) == ("suppressed", "consent")
    assert "preference-centre" in decisions[0]["reason"]
    changed = [
        (c["channel"], c["purpose"], c["status"])
        for c in consents["history"]
        if c["source"] == "preference-centre"
    ]
    assert sorted(changed) == [
        ("email", "care_coordination", "revoked"),
        ("voice", "care_coordination", "revoked"),
    ]
    assert consents["quiet_hours"] == "21:00-08:00"
    assert [(row["actor_kind"], row["action"]) for row in audit if row["actor_kind"] == "patient_link"] == [
        ("patient_link", "change_preferences")
    ]


async def test_a_pause_defers_the_next_send_until_it_ends(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    path = await abdul(sessions, api_settings)

    posted = await api.post(path, content=body(EVERYTHING_BUT_MARKETING, pause_days="7"), headers=FORM)
    shown = await api.get(path)
    held = await send(sessions, "sms", "reminder")

    assert posted.status_code == 303
    assert "Messages are paused until" in shown.text
    assert held.status == "deferred"
    assert held.rule == "paused"
    assert held.defer_until is not None
    assert timedelta(days=6, hours=23) < held.defer_until - datetime.now(UTC) <= timedelta(days=7)


async def test_bad_input_gets_errors_next_to_the_fields_and_writes_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    path = await abdul(sessions, api_settings)

    refused = await api.post(
        path,
        content=body([], quiet_start="25:00", quiet_end="08:00", pause_days="400", channel="pigeon"),
        headers=FORM,
    )
    consents = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents")).json()

    assert refused.status_code == 422
    assert "Give both times as HH:MM (24-hour clock), or leave both empty." in refused.text
    assert "Give a whole number of days from 0 to 90." in refused.text
    assert "Choose one of the listed options." in refused.text
    assert 'value="25:00"' in refused.text  # what the patient typed stays in the field
    assert consents["history"] == []
    assert consents["quiet_hours"] is None


async def test_an_expired_or_unsubscribe_link_does_not_open_the_preference_centre(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    await abdul(sessions, api_settings)
    links = patient_links(api_settings)
    expired, _ = links.token(
        "preferences",
        ABDUL_PATIENT_ID,
        "surveys",
        ttl=timedelta(days=1),
        now=datetime.now(UTC) - timedelta(days=2),
    )
    unsubscribe, _ = links.token("unsubscribe", ABDUL_PATIENT_ID, "surveys")

    old = await api.get(f"/p/{expired}")
    wrong = await api.post(f"/p/{unsubscribe}", content=body([]), headers=FORM)

    assert (old.status_code, wrong.status_code) == (410, 403)
    assert "Abdul" not in old.text + wrong.text
    assert (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents")).json()["history"] == []


@pytest.fixture
async def site(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[str]:
    async with serving(create_app(api_settings, temporal=dev_server.client)) as url:
        yield url


async def test_in_a_browser_the_patient_corrects_an_error_and_saves(
    site: str, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    path = await abdul(sessions, api_settings)
    async with chromium() as browser:
        page = await browser.new_page(bypass_csp=True)  # axe is injected as an inline script
        refused = await offline_except(page, site)
        await page.goto(f"{site}{path}")
        assert await page.title() == "Your message preferences"
        assert await axe_violations(page) == []
        await page.get_by_label("Receive News and offers by Email").check()
        await page.get_by_label("Receive Surveys by Text messages").uncheck()
        await page.get_by_label("From").fill("9pm")
        await page.get_by_label("Until").fill("08:00")
        await page.get_by_role("button", name="Save my preferences").click()
        assert await page.get_by_role("alert").inner_text() == "Please correct the fields marked below."
        assert await axe_violations(page) == []
        await page.get_by_label("From").fill("21:00")
        await page.get_by_role("button", name="Save my preferences").click()
        await page.wait_for_url(f"{site}{path}?saved=1")
        assert await page.get_by_role("status").inner_text() == "Your preferences are saved."
        assert await page.get_by_label("Receive News and offers by Email").is_checked()
        assert not await page.get_by_label("Receive Surveys by Text messages").is_checked()
        assert await axe_violations(page) == []
    assert refused == []


async def test_the_pages_are_rate_limited_per_client(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    path = await abdul(sessions, api_settings)

    codes = [(await api.get(path)).status_code for _ in range(25)]
    limited = await api.get(path)

    assert codes[:20] == [200] * 20
    assert 429 in codes[20:]
    assert limited.headers["retry-after"]
    assert "Please wait a moment" in limited.text
