"""Bursts and restarts against one API process: N concurrent triggers (N = 10, 30, 100, 300), and the
time from a Temporal or PostgreSQL restart to the first accepted trigger.

The stack runs as separate processes, as in production: pgserver's PostgreSQL 16, the Temporal dev
server, one `aftercare api` (pool of 10 + 10) and one `aftercare worker`. Each burst is 3 x N triggers
with distinct ids, N in flight at a time, a 10 s client timeout. Refused triggers (429/503) are not
retried here: the figures show what one wave gets.

    python bench/burst.py [--sizes 10,30,100,300] [--pool-size 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, synthea_bundle
from tests.integration.parts import JOURNEY, Answer, Stack, burst, post_trigger, running_stack

BURST_COLUMNS = (
    "in flight",
    "triggers",
    "accepted",
    "refused (429/503)",
    "no answer in 10 s",
    "other",
    "p50",
    "p99",
    "accepted/s",
)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] if ordered else 0.0


async def prepare(client: httpx.AsyncClient) -> None:
    """The drill journey and one Synthea patient."""
    imported = await client.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    published = await client.post("/v1/journeys", json=JOURNEY)
    imported.raise_for_status()
    published.raise_for_status()


async def one_burst(client: httpx.AsyncClient, concurrency: int) -> str:
    """A row of the burst table."""
    started = time.perf_counter()
    answers = await burst(client, ABDUL_PATIENT_ID, total=3 * concurrency, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    accepted = [a for a in answers if a.status == 202]
    refused = [a for a in answers if a.status in (429, 503)]
    hung = [a for a in answers if a.status is None]
    other = sorted({f"{a.status} {str(a.body)[:60]}" for a in answers if a not in accepted + refused + hung})
    seconds = [a.seconds for a in answers if a.status is not None]
    return (
        f"| {concurrency} | {len(answers)} | {len(accepted)} | {len(refused)} | {len(hung)} | "
        f"{', '.join(other) or 'none'} | "
        f"{1000 * statistics.median(seconds):.0f} ms | {1000 * percentile(seconds, 0.99):.0f} ms | "
        f"{len(accepted) / elapsed:.1f}/s |"
    )


async def first_success(client: httpx.AsyncClient, since: float) -> float:
    """Seconds from `since` until a trigger is accepted (trying every 100 ms)."""
    while True:
        answer: Answer = await post_trigger(client, ABDUL_PATIENT_ID, timeout=10)
        if answer.status == 202:
            return time.monotonic() - since
        await asyncio.sleep(0.1)


async def outage(
    client: httpx.AsyncClient, name: str, stop: Callable[[], None], start: Callable[[], None]
) -> str:
    """A row of the restart table: the part is down for 10 s, then started again."""
    await asyncio.to_thread(stop)
    await asyncio.sleep(10)
    refused = await post_trigger(client, ABDUL_PATIENT_ID)
    await asyncio.to_thread(start)
    back = time.monotonic()
    return (
        f"| {name} | {refused.status} in {1000 * refused.seconds:.0f} ms | "
        f"{await first_success(client, back):.2f} s |"
    )


async def recovery(stack: Stack, client: httpx.AsyncClient) -> list[str]:
    """Rows of the restart table."""
    return [
        await outage(client, "Temporal (SIGKILL, 10 s)", stack.temporal.kill, stack.temporal.start),
        await outage(client, "PostgreSQL (immediate stop, 10 s)", stack.postgres.stop, stack.postgres.start),
    ]


async def main() -> None:
    """Run the bursts and the restarts, print two Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,30,100,300")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, running_stack(Path(work), args.pool_size) as stack:
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers=AUTH_HEADERS, limits=httpx.Limits(max_connections=1000)
        ) as client:
            await prepare(client)
            await one_burst(client, 10)  # warm-up
            print("| " + " | ".join(BURST_COLUMNS) + " |")
            print("|---" * len(BURST_COLUMNS) + "|")
            for size in (int(value) for value in args.sizes.split(",")):
                print(await one_burst(client, size), flush=True)
                await asyncio.sleep(3)
            print()
            print("| part down | a trigger during the outage | back to the first accepted trigger |")
            print("|---|---|---|")
            for row in await recovery(stack, client):
                print(row, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
