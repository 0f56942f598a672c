"""Events in the console: the list, an event's page (sessions with their seats, registrations, the
waitlist) and check-in by the code a scanner reads from the patient's QR code; a forged code is refused
by its field. Each page passes axe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, sign_in

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)


async def _event_with_registrations(url: str) -> str:
    """A one-seat class: Maria registered, Omar waitlisted; returns Maria's check-in code."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        event = {
            "key": "diabetes-class",
            "title": "Living well with diabetes",
            "timezone": "America/New_York",
            "sessions": [
                {
                    "id": "morning",
                    "start": START.isoformat(),
                    "end": (START + timedelta(hours=2)).isoformat(),
                    "capacity": 1,
                    "room": "B12",
                }
            ],
        }
        assert (await client.post("/v1/events", json=event)).status_code == 201
        assert (await client.post("/v1/events/diabetes-class/publish")).status_code == 200
        codes = []
        for patient in ("p-maria", "p-omar"):
            answer = await client.post(
                "/v1/events/diabetes-class/registrations",
                json={"patient_id": patient, "session_id": "morning"},
            )
            assert answer.status_code == 201, answer.text
            view = await client.get(
                f"/v1/events/diabetes-class/registrations/{answer.json()['registration_id']}"
            )
            codes.append(view.json()["check_in_code"])
        return str(codes[0])


async def test_the_event_pages_show_seats_and_waitlist_and_check_in_by_the_qr_code(
    browser: Browser, console_url: str
) -> None:
    code = await _event_with_registrations(console_url)
    page = await sign_in(browser, console_url)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    assert await page.get_by_role("cell", name="1 of 1").is_visible()
    assert await axe_violations(page) == []

    await page.get_by_role("link", name="Living well with diabetes").click()
    assert await page.locator("#registration-" + code.split(".")[0]).inner_text() != ""
    assert "p-omar · morning · waitlisted" in await page.get_by_role("list").last.inner_text()
    assert await axe_violations(page) == []

    field = page.get_by_label("Check-in code (scan the patient's QR code)")
    await field.fill(code[:-1] + ("0" if code[-1] != "0" else "1"))  # a forged code
    await page.get_by_role("button", name="Check in").click()
    assert (
        await page.locator("#check-in-code-error").inner_text() == "this is not a check-in code of Aftercare"
    )
    assert await field.get_attribute("aria-invalid") == "true"
    assert await axe_violations(page) == []

    await field.fill(code)  # what the scanner types
    await page.get_by_role("button", name="Check in").click()
    await page.wait_for_url(f"{console_url}/console/events/diabetes-class?checked_in=*")
    assert await page.get_by_role("status").inner_text() == "Checked in."
    row = page.locator("#registration-" + code.split(".")[0])
    assert "attended" in await row.inner_text()
