"""Journeys at scale: how fast enrollments start, and what the worker holds with many journeys waiting.

    python bench/journeys.py --start-stack --enrollments 10000
    python bench/journeys.py --api http://127.0.0.1:8000 --worker-pid 1234 --enrollments 10000

It imports synthetic patients, publishes a wait-heavy journey (wait a week, then send), enrolls every
patient through `POST /v1/journeys/{key}/enrollments/batch` and prints:
  * enrollments started per second (allocated and started in Temporal);
  * how long until the worker has taken every new enrollment to its wait (the worker goes idle);
  * the worker's resident memory (and its peak) with all of them waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cost import process_cpu_seconds
from bench.stack import api_headers, dev_stack

JOURNEY_KEY = "bench-waiting"
JOURNEY = {
    "key": JOURNEY_KEY,
    "version": 1,
    "name": "Benchmark: wait a week, then send",
    "reentry": "after_exit",
    "steps": [
        {"id": "wait-a-week", "wait": {"duration": "P7D"}},
        {"id": "check-in", "send": {"channel": "sms", "body": "Hi {{ patient.given }}, how are you?"}},
    ],
}
BATCH = 500


def patients_ndjson(run_id: str, start: int, count: int) -> str:
    return "\n".join(
        json.dumps(
            {
                "resourceType": "Patient",
                "id": f"wait-{run_id}-{number}",
                "name": [{"given": [f"Wait{number}"], "family": "Patient"}],
                "telecom": [{"system": "phone", "value": f"617-555-{number % 10000:04d}", "use": "mobile"}],
            }
        )
        for number in range(start, start + count)
    )


def memory_kb(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    """The worker's CPU seconds so far (0 once it is gone)."""
    return process_cpu_seconds(pid) or 0.0


def wait_until_idle(pid: int, quiet_seconds: float = 3.0, timeout: float = 900.0) -> float:
    """Seconds until the process has used (almost) no CPU for `quiet_seconds`."""
    started = time.monotonic()
    quiet_since = None
    last = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        busy = (now - last) / 0.5
        last = now
        if busy < 0.05:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_seconds:
                return quiet_since - started
        else:
            quiet_since = None
    raise SystemExit("the worker never went idle")


async def run(api: str, worker_pid: int, count: int, headers: dict[str, str]) -> None:
    run_id = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=api, timeout=120.0, headers=headers) as client:
        for start in range(0, count, 2000):
            imported = await client.post(
                "/v1/fhir/import",
                params={"triggers": "false"},
                content=patients_ndjson(run_id, start, min(2000, count - start)),
                headers={"content-type": "application/fhir+ndjson"},
            )
            imported.raise_for_status()
        published = await client.post("/v1/journeys", json=JOURNEY)
        if published.status_code not in (200, 201):
            raise SystemExit(f"could not publish the journey: {published.text}")
        idle_before = memory_kb(worker_pid)
        cpu_before = cpu_seconds(worker_pid)

        created = 0
        began = time.perf_counter()
        batches = [list(range(start, min(start + BATCH, count))) for start in range(0, count, BATCH)]
        semaphore = asyncio.Semaphore(2)

        async def enroll(numbers: list[int]) -> int:
            async with semaphore:
                body: dict[str, Any] = {"patients": [{"patient_id": f"wait-{run_id}-{n}"} for n in numbers]}
                answer = await client.post(f"/v1/journeys/{JOURNEY_KEY}/enrollments/batch", json=body)
                answer.raise_for_status()
                result: int = answer.json()["created"]
                return result

        created = sum(await asyncio.gather(*(enroll(numbers) for numbers in batches)))
        started_in = time.perf_counter() - began

    settled_in = await asyncio.to_thread(wait_until_idle, worker_pid)
    memory = memory_kb(worker_pid)
    print(f"enrollments started  {created} of {count} in {started_in:.1f} s = {created / started_in:.0f} /s")
    total = started_in + settled_in
    print(
        f"all waiting after    {total:.1f} s = {created / total:.0f} /s "
        f"through the worker (worker CPU {cpu_seconds(worker_pid) - cpu_before:.1f} s)"
    )
    print(
        f"worker memory        {memory['VmRSS'] / 1024:.0f} MB resident with {created} journeys waiting "
        f"(peak {memory['VmHWM'] / 1024:.0f} MB; {idle_before['VmRSS'] / 1024:.0f} MB before)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--api-key", help="an API key with the FHIR import and operator roles (else AFTERCARE_API_KEY)"
    )
    parser.add_argument("--worker-pid", type=int, help="the worker to measure (found for --start-stack)")
    parser.add_argument("--enrollments", type=int, default=10000)
    parser.add_argument(
        "--start-stack", action="store_true", help="run `aftercare dev --no-demo` for the run"
    )
    parser.add_argument("--stack-port", type=int, default=18740)
    arguments = parser.parse_args()

    if arguments.start_stack:
        with dev_stack(arguments.stack_port) as stack:
            asyncio.run(run(stack.api, stack.worker_pid(), arguments.enrollments, api_headers(stack.api_key)))
        return
    if arguments.worker_pid is None:
        raise SystemExit("give --worker-pid (or --start-stack)")
    asyncio.run(
        run(arguments.api, arguments.worker_pid, arguments.enrollments, api_headers(arguments.api_key))
    )


if __name__ == "__main__":
    main()
