"""Scale-out: N API processes and N worker processes against one Temporal server and one PostgreSQL.

    python bench/scale.py                         # N = 1 then 2, 15 triggers/s for 30 s each
    python bench/scale.py --processes 1 2 3 --rate 30 --duration 60

For each N it starts `aftercare dev --no-demo` (Temporal dev server, PostgreSQL, one API, one worker),
adds N - 1 API and N - 1 worker processes with the same settings (the environment of the stack's own
API), then posts FHIR Observations of the one-step SMS journey open-loop at `--rate`, taking turns
between the APIs, and prints: triggers/s held, messages recorded per second, the server-side latency,
and the CPU time per trigger of all APIs, all workers, PostgreSQL and the Temporal server together.

On one machine the processes share its cores, so more processes cannot raise what the cores can do:
what this shows is that the application side adds no shared bottleneck of its own (no lock, no
single-process queue) and that its CPU per trigger stays flat as processes are added, which is what
lets it scale out across machines against a Temporal cluster and a PostgreSQL server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cost import CpuMeter, ProcessGroup, print_cpu, stack_processes
from bench.stack import Stack, api_headers, dev_stack
from bench.trigger_latency import ANY_HOUR, collect, drive, percentiles, prepare, recorded


@contextmanager
def more_processes(stack: Stack, extra: int, first_port: int) -> Iterator[list[tuple[str, psutil.Process]]]:
    """`extra` more API processes (on `first_port`, +1, ...) and workers, with the stack's settings."""
    groups = {group.name: group.root for group in stack_processes(stack)}
    environment = _environment_of(groups["api"])
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for number in range(extra):
            port = first_port + number
            command = [sys.executable, "-m", "aftercare", "api", "--host", "127.0.0.1", "--port", str(port)]
            started.append((f"http://127.0.0.1:{port}", subprocess.Popen(command, env=environment)))
            started.append(
                ("", subprocess.Popen([sys.executable, "-m", "aftercare", "worker"], env=environment))
            )
        for address, process in started:
            if address:
                _wait_for(address, process)
        time.sleep(5.0)  # the new workers connect and poll
        yield [(address, psutil.Process(process.pid)) for address, process in started]
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _environment_of(process: psutil.Process) -> dict[str, str]:
    environment: dict[str, str] = process.environ()
    return environment


def _wait_for(address: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"an extra API process exited with {process.returncode}")
        try:
            if httpx.get(f"{address}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the API at {address} did not become healthy")


async def measure(stack: Stack, processes: int, arguments: argparse.Namespace) -> None:
    with more_processes(stack, processes - 1, arguments.stack_port + 10) as extra:
        groups = stack_processes(stack)
        apis = [stack.api] + [address for address, _ in extra if address]
        for address, process in extra:
            groups.append(ProcessGroup("api" if address else "worker", process))
        meter = CpuMeter(_merged(groups))
        headers = api_headers(stack.api_key)
        clients = [httpx.AsyncClient(base_url=api, timeout=30.0, headers=headers) for api in apis]
        try:
            run_id = uuid.uuid4().hex[:8]
            patient_ids = await prepare(clients[0], arguments.patients, run_id)
            warm = await drive(clients, patient_ids, arguments.rate, 5.0, f"{run_id}-warmup")
            warmed = len(warm.sent_at) - len(warm.errors)
            await recorded(clients[0], warmed, run_id)
            meter.start()
            loaded_at = time.monotonic()
            run = await drive(clients, patient_ids, arguments.rate, arguments.duration, run_id)
            messages = await recorded(clients[0], warmed + len(run.sent_at) - len(run.errors), run_id)
            spent = meter.since_start()
            seconds = time.monotonic() - loaded_at
            rows = [row for row in await collect(clients[0], messages) if row["observation"] in run.sent_at]
        finally:
            for client in clients:
                await client.aclose()
    sent = sorted(run.sent_at.values())
    held = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 else 0.0
    done = sorted(row["sent_at"] for row in rows)
    throughput = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 else 0.0
    print(f"\nN = {processes}: {len(apis)} API and {processes} worker processes")
    print(
        f"  rate held {held:.2f} triggers/s; {throughput:.2f} messages/s recorded; {len(rows)} of {len(sent)}"
    )
    print(f"  errors {len(run.errors)}" + (f" (first: {run.errors[0][:120]})" if run.errors else ""))
    if len(rows) >= 2:
        cut = percentiles([(row["sent_at"] - row["received_at"]) * 1000 for row in rows])
        print(f"  server p50 {cut['p50']:.0f} ms, p95 {cut['p95']:.0f} ms, p99 {cut['p99']:.0f} ms")
    print(f"  load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print_cpu(spent, len(rows), seconds=seconds)


def _merged(groups: list[ProcessGroup]) -> list[_Sum]:
    """One meter line per kind of process: the APIs summed, the workers summed."""
    return [
        _Sum(name, [g for g in groups if g.name == name]) for name in dict.fromkeys(g.name for g in groups)
    ]


class _Sum:
    def __init__(self, name: str, members: list[ProcessGroup]) -> None:
        self.name = name
        self.members = members

    def cpu_seconds(self) -> float:
        return sum(member.cpu_seconds() for member in self.members)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="values of N")
    parser.add_argument("--rate", type=float, default=15.0, help="Observations per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per N")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--stack-port", type=int, default=18740)
    arguments = parser.parse_args()
    for processes in arguments.processes:
        with dev_stack(arguments.stack_port, environment=ANY_HOUR) as stack:
            await measure(stack, processes, arguments)


if __name__ == "__main__":
    asyncio.run(main())
