"""The care task queue in a real browser: filtered by team, priority, due date and assignee; a
coordinator claims a task (another cannot take it from them, and is told who holds it), reassigns it,
and completes it with an outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.tasks import create_task
from tests.console.conftest import axe_violations, role_key, sign_in

NOW = datetime.now(UTC)
TASKS: list[dict[str, Any]] = [
    {
        "id": "task-call-maria",
        "queue": "care-coordinators",
        "priority": "high",
        "title": "Call Maria about her lab result",
        "patient_id": "p-maria",
        "due_at": NOW + timedelta(hours=2),
    },
    {
        "id": "task-book-omar",
        "queue": "care-coordinators",
        "priority": "normal",
        "title": "Book Omar's follow-up visit",
        "patient_id": "p-omar",
        "due_at": NOW + timedelta(days=10),
    },
    {
        "id": "task-pharmacy-omar",
        "queue": "pharmacy",
        "priority": "high",
        "title": "Check Omar's new prescription",
        "patient_id": "p-omar",
        "due_at": None,
    },
]


@pytest.fixture
async def queue(console_url: str, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        for task in TASKS:
            await create_task(session, {**task, "idempotency_key": f"console-test:{task['id']}"})


async def _listed(page: Page) -> list[str]:
    return [
        (await item.get_attribute("id") or "")[len("task-") :] for item in await page.locator("li.task").all()
    ]


async def _filter(page: Page, **values: str) -> None:
    for label, value in values.items():
        field = page.locator("form.filters").get_by_label(label, exact=True)
        if await field.evaluate("element => element.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_load_state()


async def test_the_queue_filters_by_team_priority_and_due_date(
    browser: Browser, console_url: str, queue: None
) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/tasks")
    assert await _listed(page) == ["task-call-maria", "task-book-omar", "task-pharmacy-omar"]
    assert await axe_violations(page) == []

    await _filter(page, **{"Team queue": "pharmacy"})
    assert await _listed(page) == ["task-pharmacy-omar"]
    await _filter(page, **{"Team queue": "", "Priority": "high"})
    assert await _listed(page) == ["task-call-maria", "task-pharmacy-omar"]
    await _filter(page, **{"Priority": "", "Due by": (NOW + timedelta(days=2)).date().isoformat()})
    assert await _listed(page) == ["task-call-maria"]
    assert "due_by=" in page.url


async def test_claim_reassign_and_complete_a_task(browser: Browser, console_url: str, queue: None) -> None:
    coordinator_key = await role_key(console_url, "healthcare")
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/tasks")
    task = page.locator("#task-task-call-maria")
    await task.get_by_role("button", name="Claim").click()
    await page.wait_for_url(f"{console_url}/console/tasks?claimed=1")
    assert "assigned to you" in await page.locator("#task-task-call-maria").inner_text()
    assert await axe_violations(page) == []
    await _filter(page, Assignee="me")
    assert await _listed(page) == ["task-call-maria"]
    await _filter(page, Assignee="nobody")
    assert await _listed(page) == ["task-book-omar", "task-pharmacy-omar"]
    await _filter(page, Assignee="dev")  # a holder of open tasks is offered by name
    assert await _listed(page) == ["task-call-maria"]

    # another coordinator cannot claim it from under the first, and is told who holds it
    other = await sign_in(browser, console_url, coordinator_key)
    await other.goto(f"{console_url}/console/tasks")
    await other.locator("#task-task-call-maria").get_by_role("button", name="Claim").click()
    error = other.locator("#claim-task-call-maria-error")
    assert await error.inner_text() == "dev has already claimed this task"
    assert await axe_violations(other) == []

    # the first hands it over by name, and the other completes it
    task = page.locator("#task-task-call-maria")
    await task.get_by_label("Assign to").fill("api_key:console-healthcare")
    await task.get_by_role("button", name="Reassign").click()
    await page.wait_for_url(f"{console_url}/console/tasks?assigned=1")
    assert (
        "assigned to api_key:console-healthcare" in await page.locator("#task-task-call-maria").inner_text()
    )

    await other.goto(f"{console_url}/console/tasks?assignee=me")
    assert await _listed(other) == ["task-call-maria"]
    mine = other.locator("#task-task-call-maria")
    assert await mine.get_by_role("button", name="Claim").count() == 0  # already theirs
    await mine.get_by_label("Outcome").select_option("reached")
    await mine.get_by_role("button", name="Complete").click()
    await other.wait_for_url(f"{console_url}/console/tasks?completed=1")
    await _filter(other, Status="completed", Assignee="me")
    assert "reached" in await other.locator("#task-task-call-maria").inner_text()


async def test_a_task_given_to_nobody_is_unassigned_and_a_closed_one_cannot_be_claimed(
    browser: Browser, console_url: str, queue: None
) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/tasks")
    await page.locator("#task-task-book-omar").get_by_role("button", name="Claim").click()
    await page.wait_for_url(f"{console_url}/console/tasks?claimed=1")
    task = page.locator("#task-task-book-omar")
    await task.get_by_label("Assign to").fill("")
    await task.get_by_role("button", name="Reassign").click()
    await page.wait_for_url(f"{console_url}/console/tasks?assigned=1")
    assert "unassigned" in await page.locator("#task-task-book-omar").inner_text()

    await page.locator("#task-task-book-omar").get_by_role("button", name="Complete").click()
    await page.wait_for_url(f"{console_url}/console/tasks?completed=1")
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    answer = await page.request.post(
        f"{console_url}/console/tasks/task-book-omar/claim", form={"csrf": csrf or ""}
    )
    assert answer.status == 422
    assert "the task is already completed" in await answer.text()
    forged = await page.request.post(
        f"{console_url}/console/tasks/task-pharmacy-omar/claim", form={"csrf": "x"}
    )
    assert forged.status == 403
