"""Trigger latency: FHIR Observations at a steady rate into a running stack; how long until the SMS?

    python bench/trigger_latency.py --api http://127.0.0.1:8000 --rate 20 --duration 60
    python bench/trigger_latency.py --start-stack            # runs its own `aftercare dev --no-demo`

It publishes a one-step journey (`bench-trigger-latency`, re-entry `always`) and imports synthetic
patients, then posts Observations open-loop (on schedule, not waiting for answers) and prints p50,
p95 and p99 of:
  * server: the notification version received by the API -> the message recorded as sent;
  * client: the POST leaving this script -> the message recorded as sent (same machine, same clock);
and the rate actually held. With `--start-stack` it also prints the CPU time each process (API,
worker, PostgreSQL, Temporal server) spent per trigger, and the history a sample of the journeys wrote
(events, workflow tasks, activities, local activities per trigger): figures the machine's load does not
distort.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cost import (
    CpuMeter,
    history_shapes,
    pg_transactions,
    print_cpu,
    print_history,
    stack_processes,
)
from bench.stack import api_headers, dev_stack
from models.search_attributes import enrollment_workflow_id

JOURNEY_KEY = "bench-trigger-latency"
GLUCOSE = "2345-7"

TEMPLATE = {
    "key": "bench-glucose",
    "channel": "sms",
    "locale": "en",
    "body": "Hi {{ patient.given }}, your glucose result needs a follow-up. Reply YES for a call.",
}
JOURNEY = {
    "key": JOURNEY_KEY,
    "version": 1,
    "name": "Benchmark: high glucose SMS",
    "reentry": "always",
    "entry": {
        "fhir": {
            "resource": "Observation",
            "criteria": (
                f"Observation.code.coding.where(system='http://loinc.org' and code='{GLUCOSE}').exists() "
                "and Observation.valueQuantity.value > 180"
            ),
        }
    },
    "steps": [{"id": "notify", "send": {"template": "bench-glucose"}}],
}


# The synthetic patients live in Boston: without this the bench's texts would wait for the morning
# whenever it runs in their quiet hours. Consent and frequency caps still apply.
ANY_HOUR = {"QUIET_HOURS_START": "", "QUIET_HOURS_END": ""}


@dataclass
class Run:
    """What was sent and when, by Observation id."""

    sent_at: dict[str, float] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def patients(count: int, run_id: str) -> str:
    """NDJSON of synthetic patients with US phone numbers."""
    return "\n".join(
        json.dumps(
            {
                "resourceType": "Patient",
                "id": f"bench-{run_id}-{number}",
                "name": [{"given": [f"Bench{number}"], "family": "Patient"}],
                "telecom": [{"system": "phone", "value": f"617-555-{number % 10000:04d}", "use": "mobile"}],
                "gender": "unknown",
                "birthDate": "1960-01-01",
            }
        )
        for number in range(count)
    )


def observation(observation_id: str, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": observation_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": GLUCOSE, "display": "Glucose"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "valueQuantity": {
            "value": 240,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
    }


async def prepare(client: httpx.AsyncClient, count: int, run_id: str) -> list[str]:
    (await client.post("/v1/templates", json=TEMPLATE)).raise_for_status()
    response = await client.post("/v1/journeys", json=JOURNEY)
    if response.status_code not in (200, 201):
        raise SystemExit(f"could not publish the benchmark journey: {response.status_code} {response.text}")
    imported = await client.post(
        "/v1/fhir/import",
        params={"triggers": "false"},
        content=patients(count, run_id),
        headers={"content-type": "application/fhir+ndjson"},
    )
    imported.raise_for_status()
    return [f"bench-{run_id}-{number}" for number in range(count)]


async def drive(
    client: httpx.AsyncClient | Sequence[httpx.AsyncClient],
    patient_ids: list[str],
    rate: float,
    duration: float,
    run_id: str,
) -> Run:
    """Post Observations open-loop at `rate` for `duration`; several clients (API processes) take
    turns."""
    clients = [client] if isinstance(client, httpx.AsyncClient) else list(client)
    run = Run()
    total = int(rate * duration)
    start = time.perf_counter() + 0.5
    wall_offset = time.time() - time.perf_counter()

    async def post(number: int) -> None:
        observation_id = f"bench-{run_id}-obs-{number}"
        document = observation(observation_id, patient_ids[number % len(patient_ids)])
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run.sent_at[observation_id] = time.perf_counter() + wall_offset
        try:
            response = await clients[number % len(clients)].post("/v1/fhir/notifications", json=document)
            if response.status_code != 200 or response.json().get("triggered") != 1:
                run.errors.append(f"{observation_id}: {response.status_code} {response.text[:200]}")
        except httpx.HTTPError as error:
            run.errors.append(f"{observation_id}: {type(error).__name__}")
        run.answered[observation_id] = time.perf_counter() + wall_offset

    await asyncio.gather(*(post(number) for number in range(total)))
    return run


async def recorded(
    client: httpx.AsyncClient, wanted: int, run_id: str, patience: float = 120.0
) -> list[dict[str, Any]]:
    """Wait until all `wanted` messages of this run (warm-up included) are recorded as sent."""
    deadline = time.monotonic() + patience
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = await all_messages(client)
        mine = [m for m in messages if m["patient_id"].startswith(f"bench-{run_id}-")]
        if len(mine) >= wanted and all(m["status"] == "sent" for m in mine):
            break
        await asyncio.sleep(0.5)
    return mine


async def collect(client: httpx.AsyncClient, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per message: its Observation, when the API received it and when it was sent."""
    rows = []
    semaphore = asyncio.Semaphore(16)

    async def enrich(message: dict[str, Any]) -> None:
        async with semaphore:
            enrollment = (await client.get(f"/v1/enrollments/{message['enrollment_id']}")).json()
        trigger = enrollment["trigger"]
        rows.append(
            {
                "observation": trigger["resource"]["resource_id"],
                "received_at": datetime.fromisoformat(trigger["received_at"]).timestamp(),
                "sent_at": datetime.fromisoformat(message["sent_at"]).timestamp(),
            }
        )

    await asyncio.gather(*(enrich(m) for m in messages))
    return rows


async def all_messages(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        params: dict[str, Any] = {"journey_key": JOURNEY_KEY, "limit": 1000}
        if before:
            params["before"] = before
        page = (await client.get("/v1/messages", params=params)).json()["items"]
        items.extend(page)
        if len(page) < 1000:
            return items
        before = page[-1]["created_at"]


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


def report(run: Run, rows: list[dict[str, Any]], rate: float, duration: float) -> None:
    sent_times = sorted(run.sent_at.values())
    held = (len(sent_times) - 1) / (sent_times[-1] - sent_times[0]) if len(sent_times) > 1 else 0.0
    server = [(row["sent_at"] - row["received_at"]) * 1000 for row in rows]
    client = [
        (row["sent_at"] - run.sent_at[row["observation"]]) * 1000
        for row in rows
        if row["observation"] in run.sent_at
    ]
    answer = [(run.answered[key] - run.sent_at[key]) * 1000 for key in run.answered]
    completed = sorted(row["sent_at"] for row in rows)
    throughput = (len(completed) - 1) / (completed[-1] - completed[0]) if len(completed) > 1 else 0.0
    print(f"target rate        {rate:.1f} triggers/s for {duration:.0f} s ({len(sent_times)} Observations)")
    print(f"rate held          {held:.2f} triggers/s sent; {throughput:.2f} messages/s recorded")
    print(f"messages recorded  {len(rows)} of {len(sent_times)}; errors {len(run.errors)}")
    for name, values in (
        ("server (received -> SMS recorded)", server),
        ("client (POST sent -> SMS recorded)", client),
        ("notification answer (HTTP 200)", answer),
    ):
        if len(values) >= 2:
            cut = percentiles(values)
            print(
                f"{name:36s} p50 {cut['p50']:7.1f} ms   p95 {cut['p95']:7.1f} ms   "
                f"p99 {cut['p99']:7.1f} ms   max {cut['max']:7.1f} ms"
            )
    for error in run.errors[:5]:
        print("error:", error)


def timeline(run: Run, rows: list[dict[str, Any]], window: float = 5.0) -> None:
    """Latency by the second the Observation was sent, to see stalls."""
    start = min(run.sent_at.values())
    buckets: dict[int, list[float]] = {}
    for row in rows:
        sent = run.sent_at.get(row["observation"])
        if sent is not None:
            buckets.setdefault(int((sent - start) // window), []).append((row["sent_at"] - sent) * 1000)
    for bucket in sorted(buckets):
        values = sorted(buckets[bucket])
        print(
            f"  t+{bucket * window:5.0f}s  n={len(values):4d}  p50 {values[len(values) // 2]:8.1f} ms  "
            f"max {values[-1]:8.1f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--api-key", help="an API key with the trigger and FHIR roles (else AFTERCARE_API_KEY)"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="Observations per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument(
        "--start-stack", action="store_true", help="run `aftercare dev --no-demo` for the run"
    )
    parser.add_argument("--stack-port", type=int, default=18700)
    parser.add_argument("--timeline", action="store_true", help="print latency per 5-second window")
    parser.add_argument(
        "--histories", type=int, default=20, help="workflow histories to sample for events per trigger"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the stack of --start-stack (repeatable): WORKER_WORKFLOW_TASK_POLLERS=4",
    )
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of no load to measure each process's idle CPU"
    )
    parser.add_argument(
        "--ready-file", type=Path, help="write the stack's process ids here once it is up (for a profiler)"
    )
    arguments = parser.parse_args()

    if arguments.start_stack:
        settings = dict(value.split("=", 1) for value in arguments.env)
        with dev_stack(arguments.stack_port, environment=ANY_HOUR | settings) as stack:
            groups = stack_processes(stack)
            meter = CpuMeter(groups)
            if arguments.ready_file:
                pids = {group.name: group.root.pid for group in groups}
                arguments.ready_file.write_text(json.dumps(pids))
            await measure(
                stack.api,
                arguments,
                api_headers(stack.api_key),
                meter,
                stack.temporal_address,
                stack.data_dir / "pg",
            )
        return
    await measure(arguments.api, arguments, api_headers(arguments.api_key))


async def measure(
    api: str,
    arguments: argparse.Namespace,
    headers: dict[str, str],
    meter: CpuMeter | None = None,
    temporal_address: str | None = None,
    pg_data: Path | None = None,
) -> None:
    """Warm up, drive the stack, collect and report; with a meter, CPU per trigger per process from the
    start of the measured load until its last message is recorded."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=api, timeout=30.0, limits=limits, headers=headers) as client:
        run_id = uuid.uuid4().hex[:8]
        patient_ids = await prepare(client, arguments.patients, run_id)
        warm = 0
        if arguments.warmup > 0:
            warm_run = await drive(client, patient_ids, arguments.rate, arguments.warmup, f"{run_id}-warmup")
            warm = len(warm_run.sent_at) - len(warm_run.errors)  # a 503 starts nothing
            await recorded(client, warm, run_id)
        idle: dict[str, float] = {}
        if meter is not None and arguments.idle > 0:
            meter.start()
            await asyncio.sleep(arguments.idle)
            idle = {name: value / arguments.idle for name, value in meter.since_start().items()}
        if meter is not None:
            meter.start()
        loaded_at = time.monotonic()
        own_cpu = time.process_time()
        transactions = pg_transactions(pg_data) if pg_data else None
        run = await drive(client, patient_ids, arguments.rate, arguments.duration, run_id)
        messages = await recorded(client, warm + len(run.sent_at) - len(run.errors), run_id)
        spent = meter.since_start() if meter is not None else None
        own_cpu = time.process_time() - own_cpu
        seconds = time.monotonic() - loaded_at
        await asyncio.sleep(1.5)  # PostgreSQL's statistics are flushed about once a second
        after = pg_transactions(pg_data) if pg_data else None
        rows = await collect(client, messages)
        measured = [row for row in rows if row["observation"] in run.sent_at]
        report(run, measured, arguments.rate, arguments.duration)
        print(f"load average       {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
        if spent is not None:
            # per trigger that ran (a refused one, a 503, costs little and sends nothing)
            print_cpu(spent, len(measured), idle=idle, seconds=seconds)
        if measured:
            # the load generator shares the machine's cores with the stack
            print(f"  {'this script (load)':20s} {own_cpu * 1000 / len(measured):7.2f} ms")
        if transactions is not None and after is not None and measured:
            # the bench's own polling of /v1/messages adds a few
            print(f"PostgreSQL transactions per trigger  {(after - transactions) / len(measured):.2f}")
        if temporal_address and arguments.histories > 0:
            sample = [enrollment_workflow_id(m["enrollment_id"]) for m in messages[: arguments.histories]]
            print_history(await history_shapes(temporal_address, "default", sample))
        if arguments.timeline:
            timeline(run, measured)


if __name__ == "__main__":
    asyncio.run(main())
