"""A template's test send from the console, in a real browser: the variant composed for a chosen patient
goes through the real send path (intent, decision log, the SMTP provider, a real SMTP relay) to the
address the staff member gave, even with the patient's consent revoked; it is marked as a test in the
patient's decision log and counts against no cap. It never goes to the patient's own address, nor to a
suppressed or malformed one; a role without `patients:read` has no form and its post is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from aftercare.store.suppressions import suppress
from api.app import create_app
from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, import_patients, role_key, sign_in
from tests.local_services import SmtpRelay, running_smtp_relay
from tests.serving import serving

EMAIL = """key: console-reminder
channel: email
locale: en
subject: "Your visit, {{ patient.given }}"
body: "Hi {{ patient.given }}, your follow-up visit is on Tuesday."
"""
SMS = """key: console-reminder
channel: sms
locale: en
body: "Hi {{ patient.given }}, your follow-up visit is on Tuesday."
"""


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    with running_smtp_relay() as running:
        yield running


@pytest.fixture
async def console_with_smtp(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine, relay: SmtpRelay
) -> AsyncIterator[str]:
    """The app with email through the SMTP relay, two patients, an email and an SMS variant, and Maria's
    consent to every message revoked."""
    settings = api_settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": relay.port,
            "smtp_starttls": False,
            "smtp_from_email": "care@hospital.example",
        }
    )
    async with serving(create_app(settings, temporal=dev_server.client)) as url:
        await import_patients(url)
        async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
            for source in (EMAIL, SMS):
                answer = await client.post(
                    "/v1/templates", content=source, headers={"content-type": "application/yaml"}
                )
                assert answer.status_code == 201, answer.text
            revoked = await client.put(
                "/v1/patients/p-maria/consents",
                json={"consents": [{"channel": "*", "purpose": "*", "status": "revoked"}]},
            )
            assert revoked.status_code == 200, revoked.text
        yield url


async def _test_send(page: Page, patient: str, to: str, channel: str) -> None:
    form = page.locator("form.test-send")
    await form.get_by_label("Test for patient").fill(patient)
    await form.get_by_label("Send the test to").fill(to)
    await form.get_by_label("Channel").select_option(channel)
    await form.get_by_role("button", name="Send test").click()
    await page.wait_for_load_state()


async def _decisions(url: str) -> list[dict[str, str]]:
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        items: list[dict[str, str]] = (await client.get("/v1/patients/p-maria/decisions")).json()["items"]
        return items


async def test_a_test_send_reaches_the_staff_address_and_is_logged_as_a_test(
    browser: Browser, console_with_smtp: str, relay: SmtpRelay
) -> None:
    page = await sign_in(browser, console_with_smtp)
    await page.goto(f"{console_with_smtp}/console/templates/console-reminder")
    assert await axe_violations(page) == []
    await _test_send(page, "p-maria", "Coordinator@Hospital.example", "email")
    notice = await page.get_by_role("status").inner_text()
    assert notice == "The test email to Coordinator@Hospital.example is sent."
    assert await axe_violations(page) == []

    [mail] = relay.received
    assert mail["To"] == "Coordinator@Hospital.example"
    assert mail["Subject"] == "Your visit, Maria"
    assert "Hi Maria, your follow-up visit is on Tuesday." in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    [decision] = await _decisions(console_with_smtp)
    assert decision["rule"] == "staff_test_send"
    assert decision["decision"] == "sent"
    assert decision["purpose"] == "staff_test"
    assert "a test by dev" in decision["reason"]


async def test_a_test_never_goes_to_the_patients_own_or_a_bad_or_suppressed_address(
    browser: Browser, console_with_smtp: str, relay: SmtpRelay, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        await suppress(session, "email", "bounced@hospital.example", "bounce", "sendgrid")
    page = await sign_in(browser, console_with_smtp)
    await page.goto(f"{console_with_smtp}/console/templates/console-reminder")

    await _test_send(page, "p-maria", "617-555-0142", "sms")  # Maria's own phone, written nationally
    error = page.locator("#test-to-error")
    assert await error.inner_text() == "this is the patient's own address: a test goes to staff only"
    assert await axe_violations(page) == []
    await _test_send(page, "p-maria", "bounced@hospital.example", "email")
    assert "suppressed" in await error.inner_text()
    await _test_send(page, "p-maria", "not an address", "email")
    assert await error.inner_text() == "enter an email address such as name@hospital.org"
    await _test_send(page, "nobody", "coordinator@hospital.example", "email")
    assert await page.locator("#test-patient_id-error").inner_text() == "There is no patient with this id."

    assert relay.received == []
    assert await _decisions(console_with_smtp) == []


async def test_a_role_without_patient_access_has_no_test_send(
    browser: Browser, console_with_smtp: str
) -> None:
    page = await sign_in(browser, console_with_smtp, await role_key(console_with_smtp, "marketing"))
    await page.goto(f"{console_with_smtp}/console/templates/console-reminder")
    assert await page.locator("form.test-send").count() == 0
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    answer = await page.request.post(
        f"{console_with_smtp}/console/templates/console-reminder/test-send",
        form={"csrf": csrf or "", "patient_id": "p-maria", "to": "x@hospital.example", "channel": "email"},
    )
    assert answer.status == 403
