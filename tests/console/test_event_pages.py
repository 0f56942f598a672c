"""Events in the console: the list, an event's page (sessions with their seats, registrations, the
waitlist) and check-in by the code a scanner reads from the patient's QR code; a forged code is refused
by its field. Each page passes axe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Browser

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, role_key, sign_in

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

    calendar = page.get_by_role("list").filter(has_text="Living well with diabetes")
    assert "session morning, B12: 1 of 1 seats" in await calendar.inner_text()
    await page.get_by_role("table").get_by_role("link", name="Living well with diabetes").click()
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


def _local(moment: datetime) -> str:
    """A `datetime-local` value of a moment, in New York."""
    return moment.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M")


async def test_an_event_planner_sets_up_an_event_runs_check_in_on_the_tablet_screen_and_closes_with_attendance(
    browser: Browser, console_url: str
) -> None:
    page = await sign_in(browser, console_url, await role_key(console_url, "event_planner"))
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    await page.get_by_role("link", name="New event").click()
    assert await axe_violations(page) == []

    await page.get_by_label("Key (a-z, 0-9, -)").fill("heart-class")
    await page.get_by_label("Title").fill("Heart health after discharge")
    await page.get_by_label("Venue", exact=True).fill("Main hospital")
    first = page.get_by_role("group", name="Session 1")
    await first.get_by_label("Session id (a-z, 0-9, -)").fill("morning")
    await first.get_by_label("Starts").fill(_local(START))
    await first.get_by_label("Ends").fill(_local(START - timedelta(hours=1)))  # ends before it starts
    await first.get_by_label("Seats").fill("1")
    await first.get_by_label("Room").fill("B12")
    await page.get_by_role("button", name="Save the draft").click()
    assert await page.locator("#f-sessions-0-end-error").inner_text() == (
        "Value error, a session must end after it starts"
    )
    assert await axe_violations(page) == []
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        assert (await client.get("/v1/events/heart-class")).status_code == 404  # nothing written

    await first.get_by_label("Ends").fill(_local(START + timedelta(hours=2)))
    await page.get_by_role("button", name="Save the draft").click()
    await page.wait_for_url(f"{console_url}/console/events/heart-class")
    assert "draft" in await page.locator("main p").first.inner_text()
    await page.get_by_role("button", name="Publish").click()
    await page.wait_for_url(f"{console_url}/console/events/heart-class?done=1")
    assert "published" in await page.locator("main p").first.inner_text()
    assert await axe_violations(page) == []

    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        for patient in ("p-maria", "p-omar"):
            answer = await client.post(
                "/v1/events/heart-class/registrations", json={"patient_id": patient, "session_id": "morning"}
            )
            assert answer.status_code == 201, answer.text

    # one more seat: Omar, waitlisted, is offered it and takes it (through the API)
    await page.reload()
    await page.get_by_text("Change or close session morning").click()
    await page.get_by_label("Seats").fill("2")
    await page.get_by_role("button", name="Change session morning").click()
    await page.wait_for_url(f"{console_url}/console/events/heart-class?done=1")
    assert "offered" in await page.get_by_role("list").last.inner_text()
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        listed = (await client.get("/v1/events/heart-class/registrations")).json()["items"]
        [omar] = [r for r in listed if r["patient_id"] == "p-omar"]
        accepted = await client.post(f"/v1/events/heart-class/registrations/{omar['registration_id']}/accept")
        assert accepted.status_code == 200

    await page.get_by_role("link", name="Check-in screen").click()
    assert await axe_violations(page) == []
    await page.get_by_label("Or search by name or patient id").fill("maria")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("button", name="Check in Maria Console").click()
    await page.wait_for_url(f"{console_url}/console/events/heart-class/check-in?q=maria&checked_in=*")
    assert await page.get_by_role("status").inner_text() == "Checked in."
    assert "attended" in await page.get_by_role("listitem").filter(has_text="Maria").inner_text()
    assert await axe_violations(page) == []

    await page.get_by_role("link", name="Back to the event").click()
    await page.get_by_text("Change or close session morning").click()
    await page.get_by_role("button", name="Close session morning with attendance").click()
    await page.wait_for_url(f"{console_url}/console/events/heart-class?done=1")
    row = page.get_by_role("row").filter(has_text="closed")
    assert (
        await row.get_by_role("cell").nth(6).inner_text(),
        await row.get_by_role("cell").nth(7).inner_text(),
    ) == (
        "1",
        "1",
    )
    await page.get_by_label("Status").select_option("no_show")
    await page.get_by_role("button", name="Filter").click()
    shown = await page.locator("tbody tr[id^=registration-]").all_inner_texts()
    assert len(shown) == 1
    assert "p-omar" in shown[0]
    assert await axe_violations(page) == []

    export = await page.request.get(
        f"{console_url}/console/events/heart-class/registrations.csv?status=no_show"
    )
    assert export.status == 200
    assert export.headers["content-type"].startswith("text/csv")
    lines = (await export.text()).splitlines()
    assert lines[0].startswith("registration_id,patient_id,session_id,status")
    assert [line.split(",")[1:4] for line in lines[1:]] == [["p-omar", "morning", "no_show"]]


async def test_an_event_planner_renames_the_event_and_moves_it_to_another_venue(
    browser: Browser, console_url: str
) -> None:
    await _event_with_registrations(console_url)
    page = await sign_in(browser, console_url, await role_key(console_url, "event_planner"))
    await page.goto(f"{console_url}/console/events/diabetes-class")
    await page.get_by_text("Change the event's details").click()
    assert await page.get_by_label("Title").input_value() == "Living well with diabetes"

    await page.get_by_label("Title").fill(" ")
    await page.get_by_label("Venue", exact=True).fill("North clinic")
    await page.get_by_role("button", name="Save the details").click()
    assert await page.locator("#details-title-error").is_visible()  # a blank title, refused by its field
    assert await axe_violations(page) == []

    await page.get_by_label("Title").fill("Diabetes: living well")
    await page.get_by_label("Venue address").fill("2 Elm Street")
    await page.get_by_role("button", name="Save the details").click()
    await page.wait_for_url(f"{console_url}/console/events/diabetes-class?done=1")
    assert await page.get_by_role("heading", level=1).inner_text() == "Diabetes: living well"
    assert await axe_violations(page) == []
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        shown = (await client.get("/v1/events/diabetes-class")).json()
    assert (shown["title"], shown["venue"]["name"], shown["venue"]["address"]) == (
        "Diabetes: living well",
        "North clinic",
        "2 Elm Street",
    )
    assert shown["sequence"] == 1  # the registered are told, with an updated invite


async def test_a_role_without_event_rights_has_no_events_and_no_editor(
    browser: Browser, console_url: str
) -> None:
    page = await sign_in(browser, console_url, await role_key(console_url, "marketing"))
    assert await page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").count() == 0
    for path in ("/console/events", "/console/events/new"):
        refused = await page.goto(f"{console_url}{path}")
        assert refused is not None
        assert refused.status == 403
