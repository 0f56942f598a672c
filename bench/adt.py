"""HL7 v2 ADT over MLLP: messages per second with the ACK after the commit, over one connection and
over four; and A03 discharge -> first journey message latency at a steady rate.

    python bench/adt.py --start-stack                 # runs its own `aftercare dev --no-demo` with MLLP
    python bench/adt.py --mllp-port 2575 --api http://127.0.0.1:8000 --api-key ...

Throughput: A01 admissions for distinct patients (each stores a Patient, an Encounter and a Condition
and is answered `AA` only once committed and handed on), sent by the `hl7` package's asyncio client
over one connection and over four, each connection waiting for every ACK as most interface engines
do, then pipelining (`--window` messages in flight per connection). With `--start-stack`, each row
also gives the CPU milliseconds per message of each process of the stack (from `/proc`), which a
loaded machine distorts far less than the rates, the CPU milliseconds per message of this script
itself (the sender: it shares the machine's cores with the stack), and the load average. Latency: A03
discharges for distinct patients sent open-loop at `--rate` per second; the time from the message leaving this
script to the journey's welcome SMS recorded (`messages.created_at`, same machine, same clock). The
send is `urgent`, so quiet hours at the hospital (whatever the time of the run) do not defer it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
from hl7.mllp import open_hl7_connection

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import Stack, api_headers, dev_stack, stack_cpu

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "aftercare" / "hl7v2" / "samples"
JOURNEY = {
    "key": "bench-adt-discharge",
    "version": 1,
    "name": "ADT bench: welcome home",
    "reentry": "always",
    "entry": {
        "fhir": {
            "resource": "Encounter",
            "interactions": ["create", "update"],
            "criteria": "Encounter.status = 'finished'",
        }
    },
    "steps": [
        {
            "id": "welcome",
            "send": {"channel": "sms", "body": "Welcome home, {{ patient.given }}.", "urgent": True},
        }
    ],
}


def message(sample: str, run: str, number: int) -> str:
    """The sample for patient `number` of this run: its own MRN, visit, control id and given name."""
    text = (SAMPLES / f"{sample}.hl7").read_text().strip("\n").replace("\n", "\r") + "\r"
    tag = f"{run}{number:06d}"
    text = text.replace("MRN12345", f"B{tag}").replace("V0001", f"V{tag}").replace("999-12-3456", f"S{tag}")
    text = text.replace("^Alfreda^J", f"^P{tag}^J").replace("5559876", f"555{number % 10_000:04d}")
    # distinct people: their own birth date and home and work numbers, so identity rules match nobody
    born = f"{1930 + number % 60}{1 + number // 60 % 12:02d}{1 + number // 720 % 28:02d}"
    text = text.replace("19580312", born).replace("5551234", f"556{number % 10_000:04d}")
    text = text.replace("5550000", f"557{number % 10_000:04d}").replace("Smith^Alfreda", f"Smith^P{tag}")
    header, rest = text.split("\r", 1)
    fields = header.split("|")
    fields[9] = f"{sample[:3].upper()}{tag}"
    return "|".join(fields) + "\r" + rest


async def send_all(port: int, texts: list[str], window: int = 1) -> list[float]:
    """Over one connection with up to `window` messages awaiting their ACK (1: each after the previous
    ACK, as most interface engines send); the round trips (s), send to ACK."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    slots = asyncio.Semaphore(window)
    started: list[float] = []

    async def sender() -> None:
        for text in texts:
            await slots.acquire()
            started.append(time.perf_counter())
            writer.writemessage(text)
            await writer.drain()

    sending = asyncio.create_task(sender())
    times = []
    try:
        for position in range(len(texts)):
            ack = await reader.readmessage()
            times.append(time.perf_counter() - started[position])
            slots.release()
            code = str(ack.segment("MSA")[1])
            if code != "AA":
                raise SystemExit(f"ACK {code}: {ack}")
        await sending
    finally:
        sending.cancel()
        writer.close()
    return times


def cpu_columns(before: dict[str, float], after: dict[str, float], messages: int) -> str:
    """Milliseconds of CPU per message for each part of the stack that used any."""
    used = {role: (after.get(role, 0.0) - before.get(role, 0.0)) * 1000 / messages for role in after}
    return " | ".join(f"{used.get(role, 0.0):.1f}" for role in CPU_ROLES)


CPU_ROLES = ("mllp", "postgres", "temporal", "worker", "api")


async def throughput(
    port: int, connections: int, window: int, total: int, run: str, stack: Stack | None
) -> str:
    per = total // connections
    batches = [[message("a01_admit", run, c * per + i) for i in range(per)] for c in range(connections)]
    cpu_before = stack_cpu(stack) if stack else {}
    started, sender_cpu = time.perf_counter(), time.process_time()
    times = [t for b in await asyncio.gather(*(send_all(port, b, window) for b in batches)) for t in b]
    elapsed, sender_cpu = time.perf_counter() - started, time.process_time() - sender_cpu
    cpu = (
        cpu_columns(cpu_before, stack_cpu(stack), len(times)) if stack else " | ".join("-" for _ in CPU_ROLES)
    )
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return (
        f"| {connections} | {window} | {len(times)} | {len(times) / elapsed:.1f} | "
        f"{cuts[49] * 1000:.0f} ms | {cuts[98] * 1000:.0f} ms | {cpu} | "
        f"{sender_cpu * 1000 / len(times):.1f} | {os.getloadavg()[0]:.1f} |"
    )


async def latency(port: int, client: httpx.AsyncClient, rate: float, duration: float, run: str) -> str:
    """A03s at `rate`/s on 4 connections (round robin); time to each patient's welcome message."""
    total = int(rate * duration)
    sent: dict[str, float] = {}
    queues: list[asyncio.Queue[tuple[str, str] | None]] = [asyncio.Queue() for _ in range(4)]

    async def connection(queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        reader, writer = await open_hl7_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            given, text = item
            sent[given] = time.time()
            writer.writemessage(text)
            await writer.drain()
            await reader.readmessage()
        writer.close()

    workers = [asyncio.create_task(connection(q)) for q in queues]
    start = time.perf_counter()
    for number in range(total):
        await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
        queues[number % 4].put_nowait((f"P{run}{number:06d}", message("a03_discharge", run, number)))
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    held = total / (time.perf_counter() - start)
    recorded: dict[str, float] = {}
    deadline = time.monotonic() + 180
    while len(recorded) < total and time.monotonic() < deadline:
        page = (
            await client.get("/v1/messages", params={"journey_key": str(JOURNEY["key"]), "limit": 1000})
        ).json()
        for item in page["items"]:
            given = item["body"].removeprefix("Welcome home, ").rstrip(".")
            if given in sent:
                recorded[given] = datetime.fromisoformat(item["created_at"]).timestamp()
        await asyncio.sleep(1)
    waits = sorted((recorded[g] - sent[g]) * 1000 for g in recorded)
    if len(waits) < 2:
        return f"| {rate:.0f}/s asked, {held:.1f}/s held | {len(recorded)} of {total} | - | - | - | - | - |"
    cuts = statistics.quantiles(waits, n=100, method="inclusive")
    return (
        f"| {rate:.0f}/s asked, {held:.1f}/s held | {len(recorded)} of {total} | "
        f"{cuts[49]:.0f} ms | {cuts[94]:.0f} ms | {cuts[98]:.0f} ms | {waits[-1]:.0f} ms | "
        f"{os.getloadavg()[0]:.1f} |"
    )


async def measure(
    port: int, api: str, headers: dict[str, str], arguments: argparse.Namespace, stack: Stack | None = None
) -> None:
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as client:
        published = await client.post("/v1/journeys", json=JOURNEY)
        if published.status_code not in (200, 201, 409):
            raise SystemExit(f"publishing the journey: {published.status_code} {published.text}")
        run = uuid.uuid4().hex[:6]
        await send_all(port, [message("a01_admit", f"w{run[:5]}", i) for i in range(20)])  # warm-up
        roles = " | ".join(f"CPU ms/msg {role}" for role in CPU_ROLES)
        print(
            "| connections | in flight each | messages | messages/s | round trip p50 | p99 | "
            f"{roles} | CPU ms/msg sender (this script) | load |"
        )
        print("|---|---|---|---|---|---|" + "---|" * len(CPU_ROLES) + "---|---|")
        rows = [(1, 1), (4, 1), (1, arguments.window), (4, arguments.window)]
        for number, (connections, window) in enumerate(rows[2:] if arguments.pipelined_only else rows):
            row = await throughput(port, connections, window, arguments.messages, f"{number}{run[:5]}", stack)
            print(row, flush=True)
        if arguments.skip_latency:
            return
        print()
        print("| A03 rate | journeys started | A03 -> SMS p50 | p95 | p99 | max | load |")
        print("|---|---|---|---|---|---|---|")
        print(await latency(port, client, arguments.rate, arguments.duration, f"L{run[:5]}"))


async def wait_for_listener(port: int, patience: float = 90.0) -> None:
    deadline = time.monotonic() + patience
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        writer.close()
        return


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", help="an API key that may publish journeys and read messages")
    parser.add_argument("--mllp-port", type=int, default=2575)
    parser.add_argument("--messages", type=int, default=400, help="A01s per throughput row")
    parser.add_argument(
        "--window", type=int, default=32, help="messages in flight per connection in the pipelined rows"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="A03 discharges per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of A03 load")
    parser.add_argument(
        "--start-stack", action="store_true", help="run `aftercare dev --no-demo` for the run"
    )
    parser.add_argument("--stack-port", type=int, default=18760)
    parser.add_argument(
        "--mllp-processes", type=int, default=1, help="with --start-stack: MLLP listener processes"
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="the throughput rows only, not the A03 latency"
    )
    parser.add_argument(
        "--pipelined-only", action="store_true", help="only the throughput rows with --window in flight"
    )
    arguments = parser.parse_args()
    if arguments.start_stack:
        with dev_stack(
            arguments.stack_port,
            mllp_port=arguments.stack_port + 3,
            mllp_processes=arguments.mllp_processes,
        ) as stack:
            await wait_for_listener(arguments.stack_port + 3)  # the MLLP child starts after the API
            await measure(arguments.stack_port + 3, stack.api, api_headers(stack.api_key), arguments, stack)
        return
    await measure(arguments.mllp_port, arguments.api, api_headers(arguments.api_key), arguments)


if __name__ == "__main__":
    asyncio.run(main())
