"""The Temporal dev server's own ceiling for starting journeys, without Aftercare: the comparison for
`bench/journeys.py`'s enrollment starts.

    python bench/bare_starts.py --workflows 10000

It starts the dev server exactly as `aftercare dev` does (the same command line: SQLite pragmas, one
task-queue partition, Aftercare's search attributes), a bare worker in a process of its own (a workflow
that sleeps a week and does nothing else; no sandbox, no codec: a floor for the worker's share of the
cores) and starts `--workflows` executions with Aftercare's search attributes, `--concurrency` at a time
(`bench/journeys.py` sends two batches at once, each started 32 at a time: 64). It prints starts per
second, how long until the worker has taken every one to its sleep, and the dev server's CPU per
workflow. Where Aftercare's enrollment rate is close to this one, the dev server is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.devstack.temporal_server import dev_server_command, start_dev_server
from bench.cost import process_cpu_seconds
from bench.journeys import wait_until_idle
from models.search_attributes import (
    CURRENT_STEP,
    ENROLLMENT_STATUS,
    JOURNEY_KEY,
    JOURNEY_VERSION,
    PATIENT_ID,
)

TASK_QUEUE = "bare-starts"


@workflow.defn(name="BareWaiting")
class BareWaiting:
    """A journey's shape without a journey: start, one workflow task, a week's timer."""

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(days=7))


async def serve_worker(address: str) -> None:
    client = await Client.connect(address)
    worker = Worker(
        client, task_queue=TASK_QUEUE, workflows=[BareWaiting], workflow_runner=UnsandboxedWorkflowRunner()
    )
    await worker.run()


async def connect(address: str, patience: float = 60.0) -> Client:
    deadline = time.monotonic() + patience
    while True:
        try:
            return await Client.connect(address)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def attributes(number: int) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(PATIENT_ID, f"wait-{number}"),
            SearchAttributePair(JOURNEY_KEY, "bench-waiting"),
            SearchAttributePair(JOURNEY_VERSION, 1),
            SearchAttributePair(ENROLLMENT_STATUS, "running"),
            SearchAttributePair(CURRENT_STEP, "wait-a-week"),
        ]
    )


async def start_all(client: Client, count: int, concurrency: int) -> float:
    """Seconds to start `count` workflows, `concurrency` at a time."""
    run_id = uuid.uuid4().hex[:8]
    limit = asyncio.Semaphore(concurrency)

    async def start(number: int) -> None:
        async with limit:
            await client.start_workflow(
                BareWaiting.run,
                id=f"bare-{run_id}-{number}",
                task_queue=TASK_QUEUE,
                search_attributes=attributes(number),
                static_summary="Benchmark: wait a week (v1)",
            )

    began = time.perf_counter()
    await asyncio.gather(*(start(number) for number in range(count)))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, default=18940)
    parser.add_argument("--worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        asyncio.run(serve_worker(arguments.worker))
        return

    address = f"127.0.0.1:{arguments.port}"
    with tempfile.TemporaryDirectory(prefix="aftercare-bare-") as data:
        command = dev_server_command(
            db_file=Path(data) / "temporal.db",
            host="127.0.0.1",
            port=arguments.port,
            ui_port=arguments.port + 1,
            namespace="default",
        )
        server = start_dev_server(command, Path(data) / "temporal.log")
        worker = None
        try:
            client = asyncio.run(connect(address))
            worker = subprocess.Popen([sys.executable, __file__, "--worker", address])
            time.sleep(3)
            server_cpu = process_cpu_seconds(server.pid) or 0.0
            started_in = asyncio.run(start_all(client, arguments.workflows, arguments.concurrency))
            settled_in = wait_until_idle(worker.pid)
            server_cpu = (process_cpu_seconds(server.pid) or 0.0) - server_cpu
            count = arguments.workflows
            print(f"load average         {' '.join(f'{value:.2f}' for value in psutil.getloadavg())}")
            print(f"workflows started    {count} in {started_in:.1f} s = {count / started_in:.0f} /s")
            total = started_in + settled_in
            print(f"all sleeping after   {total:.1f} s = {count / total:.0f} /s through the worker")
            print(f"dev server CPU       {server_cpu * 1000 / count:.1f} ms per workflow")
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
