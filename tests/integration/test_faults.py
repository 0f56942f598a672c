"""Bursts and outages, as a hospital's reliability engineer would try them: the stack runs as separate
processes (PostgreSQL, the Temporal dev server, `aftercare api`, `aftercare worker`), triggers arrive
with distinct ids, a part is killed and started again, and every count is read from the database.

Whatever happens, a caller gets an answer before its timeout; every refusal is a 429 or 503 with
`Retry-After`; every accepted trigger (including refused ones that the caller repeats with the same
id) ends in exactly one message; the API serves again within 5 s of the part's return; and no
connection is left idle inside a transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.integration.parts import JOURNEY, Answer, Stack, burst, retry_refused, running_stack, steady

CLIENT_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults"), pool_size=5) as started:
        yield started


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as api:
        imported = await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
        published = await api.post("/v1/journeys", json=JOURNEY)
        assert imported.status_code == 200, imported.text
        assert published.status_code in (200, 201), published.text
        yield api


def assert_honest(answers: list[Answer], allowed: set[int]) -> None:
    """Every request answered in time, with an allowed status; every refusal says when to retry."""
    unanswered = [answer for answer in answers if answer.status is None or answer.status == 0]
    assert not unanswered, f"{len(unanswered)} requests got no answer within {CLIENT_TIMEOUT} s"
    assert {answer.status for answer in answers} <= allowed, sorted({a.status or 0 for a in answers})
    for answer in answers:
        if answer.status != 202:
            assert int(answer.retry_after or 0) > 0, answer
            assert "detail" in answer.body, answer.body


async def assert_exactly_one_message_each(stack: Stack, trigger_ids: set[str]) -> None:
    """Every trigger's enrollment sends its one message (waiting for the worker), and nothing else."""
    deadline = time.monotonic() + 90
    while True:
        counts = stack.messages_per_trigger()
        done = {key for key in trigger_ids if counts.get(key) == 1}
        if done == trigger_ids or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    mine = {key: count for key, count in counts.items() if key in trigger_ids}
    assert set(mine) == trigger_ids, f"{len(trigger_ids - set(mine))} accepted triggers have no enrollment"
    assert set(mine.values()) == {1}, {key: n for key, n in mine.items() if n != 1}


def first_success_after(answers: list[Answer], moment: float) -> float:
    """Seconds from `moment` to the end of the first accepted request sent after it."""
    after = [a.sent_at + a.seconds - moment for a in answers if a.sent_at >= moment and a.status == 202]
    assert after, "no request succeeded after the part came back"
    return min(after)


async def assert_outage_answered_honestly_and_healed(
    stack: Stack, client: httpx.AsyncClient, answers: list[Answer], back: float
) -> None:
    """During the outage: answers in time, 503s with Retry-After. After it: service within 5 s, and the
    caller's repeats of what was refused each end in exactly one message."""
    assert_honest(answers, {202, 503})
    assert any(answer.status == 503 for answer in answers), "the outage was not noticed"
    assert first_success_after(answers, back) <= 5
    final = await retry_refused(client, ABDUL_PATIENT_ID, answers)
    assert {answer.status for answer in final} == {202}
    await assert_exactly_one_message_each(stack, {answer.trigger_id for answer in final})


@pytest.mark.parametrize("concurrency", [30, 100])
async def test_a_burst_of_concurrent_triggers_never_locks_up_the_pool(
    stack: Stack, client: httpx.AsyncClient, concurrency: int
) -> None:
    answers = await burst(
        client, ABDUL_PATIENT_ID, total=200, concurrency=concurrency, timeout=CLIENT_TIMEOUT
    )

    assert_honest(answers, {202, 429, 503})
    final = await retry_refused(client, ABDUL_PATIENT_ID, answers)
    assert {answer.status for answer in final} == {202}
    await assert_exactly_one_message_each(stack, {answer.trigger_id for answer in final})
    assert stack.idle_in_transaction(older_than_seconds=1) == 0


async def test_a_temporal_outage_gets_prompt_503s_and_the_api_serves_within_seconds_of_its_return(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    stream = asyncio.create_task(steady(client, ABDUL_PATIENT_ID, per_second=5, seconds=30))
    await asyncio.sleep(5)
    stack.temporal.kill()
    await asyncio.sleep(7)
    idle_during_outage = stack.idle_in_transaction()
    await asyncio.sleep(3)
    await asyncio.to_thread(stack.temporal.start)
    back = time.monotonic()
    answers = await stream

    assert idle_during_outage == 0
    await assert_outage_answered_honestly_and_healed(stack, client, answers, back)


async def test_enrollments_accepted_during_a_temporal_outage_start_within_seconds_of_its_return(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    stack.temporal.kill()
    answers = await burst(client, ABDUL_PATIENT_ID, total=10, concurrency=5)
    await asyncio.to_thread(stack.temporal.start)
    back = time.monotonic()
    refused = {answer.trigger_id for answer in answers if answer.status == 503}
    while time.monotonic() - back < 20:
        if {key for key, n in stack.messages_per_trigger().items() if n == 1} >= refused:
            break
        await asyncio.sleep(0.5)
    started_within = time.monotonic() - back

    assert_honest(answers, {503})
    assert started_within < 15, "the enrollments allocated during the outage waited for reconciliation"
    final = await retry_refused(client, ABDUL_PATIENT_ID, answers)
    assert {answer.status for answer in final} == {202}
    await assert_exactly_one_message_each(stack, refused)


async def test_a_database_outage_gets_503s_with_retry_after_and_the_api_serves_within_seconds_of_its_return(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    stream = asyncio.create_task(steady(client, ABDUL_PATIENT_ID, per_second=5, seconds=25))
    await asyncio.sleep(5)
    await asyncio.to_thread(stack.postgres.stop)
    await asyncio.sleep(5)
    health = await client.get("/healthz")
    await asyncio.sleep(5)
    await asyncio.to_thread(stack.postgres.start)
    back = time.monotonic()
    answers = await stream

    assert health.status_code == 503
    assert health.json()["database"].startswith("down")
    assert health.json()["temporal"] == "ok"
    await assert_outage_answered_honestly_and_healed(stack, client, answers, back)
    assert stack.idle_in_transaction() == 0


def test_the_parts_were_really_separate_processes(stack: Stack) -> None:
    pids = {part.process.pid for part in (stack.api, stack.worker, stack.temporal) if part.process}
    assert len(pids) == 3
    assert Path(unquote(stack.postgres.url.split("host=")[1])).exists()
