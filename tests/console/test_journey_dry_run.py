"""A journey's dry run against a chosen patient, in a real browser: the journey's own interpreter walks
the definition with the dry-run steps; the entry criteria are judged over the patient's newest resource
of the entry's type, branches over the patient's data, sends are composed for the patient, updates change
what later steps see, the user chooses which awaited events arrive, and nothing is sent or created."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, role_key, sign_in

JOURNEY = """key: console-dry
version: 1
name: Dry run demo
entry:
  fhir:
    resource: Encounter
    criteria: "Encounter.class.code = 'IMP'"
steps:
  - {id: welcome, send: {channel: sms, body: "Welcome home, {{ patient.given }}."}}
  - {id: ring, call: {say: "Hello from the clinic.", on_unanswered: done}}
  - id: route
    branch:
      - {when: "%patient.gender = 'female'", goto: call-her}
      - {otherwise: wait-a-day}
  - id: call-her
    task: {queue: care-coordinators, title: "Call {{ patient.name }}"}
    goto: done
  - {id: wait-a-day, wait: {duration: P1D}}
  - {id: reply, wait_for: {event: sms.reply, timeout: P2D, on_timeout: done}}
  - {id: mark, update: {set: {replied_to: "{{ patient.given }}", follow_up: true}}}
  - id: thanked
    branch:
      - {when: "%attributes.follow_up = true", goto: thank}
      - {otherwise: done}
  - {id: thank, send: {channel: sms, body: "Thank you, {{ patient.attributes.replied_to }}."}}
  - {id: done, end: {outcome: completed}}
"""
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "enc-maria",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
    "subject": {"reference": "Patient/p-maria"},
    "period": {"start": "2026-11-20T08:00:00Z", "end": "2026-11-24T10:00:00Z"},
}


@pytest.fixture
async def journey(console_url: str) -> None:
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        published = await client.post(
            "/v1/journeys", content=JOURNEY, headers={"content-type": "application/yaml"}
        )
        assert published.status_code == 201, published.text
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ENCOUNTER}]}
        imported = await client.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})
        assert imported.status_code == 200, imported.text


async def _dry_run(page: Page, patient_id: str, *, arrives: bool = False, answers: bool = True) -> list[str]:
    await page.get_by_label("Patient id for the dry run").fill(patient_id)
    await page.get_by_label("sms.reply arrives at reply").set_checked(arrives)
    await page.get_by_label("the patient answers the call at ring").set_checked(answers)
    await page.get_by_role("button", name="Dry run").click()
    await page.wait_for_load_state()
    return [" ".join(text.split()) for text in await page.locator(".dry-run-path li").all_inner_texts()]


async def test_the_dry_run_shows_each_patients_path_and_sends_nothing(
    browser: Browser, console_url: str, journey: None
) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/journeys/console-dry")
    assert await axe_violations(page) == []

    assert await _dry_run(page, "p-maria") == [
        "welcome send — would send by sms (1 segment): Welcome home, Maria.",
        "ring call — would call the patient (no questions); taken as answered",
        "route branch — condition 1 holds: %patient.gender = 'female'",
        "call-her task — would create a normal task for care-coordinators: Call {{ patient.name }}",
        "done end — ends: completed",
    ]
    entry = await page.locator(".dry-run-entry").inner_text()
    assert entry.startswith("Entry: the entry criteria hold for Encounter/enc-maria/_history/")
    assert await page.locator(".dry-run-outcome").inner_text() == "Outcome: completed"
    assert "p-maria" not in page.url
    assert await axe_violations(page) == []

    omar_texts = "welcome send — would not send by sms: the patient has no phone number"
    assert await _dry_run(page, "p-omar", answers=False) == [
        omar_texts,
        "ring call — would call the patient (no questions); taken as not answered",
        "done end — ends: completed",
    ]
    assert await _dry_run(page, "p-omar") == [
        omar_texts,
        "ring call — would call the patient (no questions); taken as answered",
        "route branch — no condition holds",
        "wait-a-day wait — would wait P1D",
        "reply wait_for — would wait for sms.reply (up to P2D); taken as timed out",
        "done end — ends: completed",
    ]
    entry = await page.locator(".dry-run-entry").inner_text()
    assert entry.startswith("Entry: enters on a FHIR Encounter: the patient has none")

    # The reply arrives: the update is applied for the steps after it, so the branch and the text see it.
    assert await _dry_run(page, "p-omar", arrives=True) == [
        omar_texts,
        "ring call — would call the patient (no questions); taken as answered",
        "route branch — no condition holds",
        "wait-a-day wait — would wait P1D",
        "reply wait_for — would wait for sms.reply (up to P2D); taken as arrived",
        "mark update — would set follow_up = True, replied_to = 'Omar'",
        "thanked branch — condition 1 holds: %attributes.follow_up = true",
        "thank send — would not send by sms: the patient has no phone number",
        "done end — ends: completed",
    ]
    assert await page.get_by_label("sms.reply arrives at reply").is_checked()
    assert await axe_violations(page) == []

    await _dry_run(page, "nobody")
    assert await page.locator("#dry-run-patient-error").inner_text() == "There is no patient with this id."

    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        assert (await client.get("/v1/messages", params={"patient_id": "p-maria"})).json()["items"] == []
        assert (await client.get("/v1/tasks")).json()["items"] == []
        assert (await client.get("/v1/enrollments", params={"journey_key": "console-dry"})).json()[
            "items"
        ] == []


async def test_a_role_without_patient_access_has_no_dry_run(
    browser: Browser, console_url: str, journey: None
) -> None:
    page = await sign_in(browser, console_url, await role_key(console_url, "marketing"))
    await page.goto(f"{console_url}/console/journeys/console-dry")
    assert await page.locator("form.dry-run").count() == 0
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    answer = await page.request.post(
        f"{console_url}/console/journeys/console-dry/dry-run",
        form={"csrf": csrf or "", "patient_id": "p-maria"},
    )
    assert answer.status == 403
