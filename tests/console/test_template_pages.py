"""Templates in the console: the list, and a live preview for a chosen patient with the SMS's segment
count and encoding; a patient that does not exist is refused next to the field. SMS sizes by encoding."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page

from aftercare.sms_segments import SmsSize, sms_size
from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, sign_in

TEMPLATE = """key: console-hello
channel: sms
locale: en
body: "Hi {{ patient.given }}, your care team will call you tomorrow. Reply STOP to opt out."
"""


def test_sms_sizes_follow_the_encoding() -> None:
    assert sms_size("Hello") == SmsSize("GSM-7", 5, 1)
    assert sms_size("x" * 160).segments == 1
    assert sms_size("x" * 161).segments == 2
    assert sms_size("€" * 80) == SmsSize("GSM-7", 160, 1)
    assert sms_size("Olá, até já 😊") == SmsSize("UCS-2", 14, 1)
    assert sms_size("ç" * 71).segments == 2
    assert sms_size("") == SmsSize("GSM-7", 0, 0)


async def _published_and_signed_in(browser: Browser, console_url: str) -> Page:
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        answer = await client.post(
            "/v1/templates", content=TEMPLATE, headers={"content-type": "application/yaml"}
        )
        assert answer.status_code == 201, answer.text
    return await sign_in(browser, console_url)


async def test_preview_a_template_for_a_patient(browser: Browser, console_url: str) -> None:
    page = await _published_and_signed_in(browser, console_url)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    assert await axe_violations(page) == []
    await page.get_by_role("link", name="console-hello").click()
    assert await axe_violations(page) == []

    await page.get_by_label("Patient id").fill("nobody")
    await page.get_by_role("button", name="Preview").click()
    assert await page.locator("#patient_id-error").inner_text() == "There is no patient with this id."

    await page.get_by_label("Patient id").fill("p-maria")
    await page.get_by_role("button", name="Preview").click()
    preview = page.locator(".preview")
    assert (
        "Hi Maria, your care team will call you tomorrow." in await preview.locator(".rendered").inner_text()
    )
    assert await preview.locator(".sms-size").inner_text() == "1 segment · GSM-7 · 71 characters"
    assert "p-maria" not in page.url
    assert await axe_violations(page) == []


async def test_edit_a_template_variant_after_a_refused_broken_one(browser: Browser, console_url: str) -> None:
    page = await _published_and_signed_in(browser, console_url)
    await page.goto(f"{console_url}/console/templates/console-hello")
    await page.get_by_role("link", name="Edit the sms en variant").click()
    editor = page.get_by_label("Template variant (YAML)")
    text = await editor.input_value()
    assert "Hi {{ patient.given }}" in text

    await editor.fill(text.replace("{{ patient.given }}", "{{ patient.given "))
    await page.get_by_role("button", name="Publish").click()
    alert = page.get_by_role("alert")
    assert "Line 4 (body)" in await alert.inner_text()
    assert await axe_violations(page) == []

    await editor.fill(text.replace("tomorrow", "today"))
    await page.get_by_role("button", name="Publish").click()
    assert "Version 2 is published" in await page.get_by_role("status").inner_text()
    assert "call you today" in await page.locator(".template-source").inner_text()
