"""The API's CPU and statements per FHIR notification, measured in one process.

    python bench/notification_cpu.py --notifications 300

It starts `aftercare dev --no-demo` for PostgreSQL, Temporal and the worker, builds the API app in this
process against them (as `aftercare api` would), publishes `bench/trigger_latency.py`'s one-step journey
and posts its Observations one after another through httpx's ASGI transport. It prints the CPU time
this process spent inside the app per notification (the route, its middleware and the Temporal start;
no HTTP server) and the statements the app ran per notification, by kind, with SQLAlchemy's cache
status. Sequential and in one process, the figure moves less with the machine's load than a whole
stack's; compare runs taken one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import dev_stack
from bench.trigger_latency import ANY_HOUR, observation, prepare

# What the stack gives its API process, taken into this one.
_STACK_SETTINGS = (
    "AFTERCARE_ENV",
    "AFTERCARE_DEV_API_KEY",
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TASK_QUEUE",
    "AFTERCARE_CODEC_KEYS_FILE",
    "TWILIO_AUTH_TOKEN",
    "QUIET_HOURS_START",
    "QUIET_HOURS_END",
)


async def measure(environment: dict[str, str], notifications: int, warmup: int) -> None:
    os.environ.update({name: environment[name] for name in _STACK_SETTINGS if name in environment})
    from sqlalchemy import event

    from aftercare.settings import get_settings
    from api.app import create_app

    app = create_app(get_settings())
    statements: Counter[tuple[str, str]] = Counter()
    spent = [0.0]

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        started = time.process_time()
        try:
            await app(scope, receive, send)
        finally:
            spent[0] += time.process_time() - started

    def count(connection: Any, cursor: Any, sql: str, parameters: Any, context: Any, many: bool) -> None:
        words = sql.split()
        stats = getattr(context, "_get_cache_stats", lambda: "raw")().split()[0]
        statements[(" ".join(words[:6])[:90], stats)] += 1

    async with app.router.lifespan_context(app):
        event.listen(app.state.services.engine.sync_engine, "before_cursor_execute", count)
        headers = {"X-API-Key": environment["AFTERCARE_DEV_API_KEY"]}
        transport = httpx.ASGITransport(app=timed)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
            run_id = uuid.uuid4().hex[:8]
            patient_ids = await prepare(client, 50, run_id)

            async def post(number: int) -> None:
                document = observation(f"cpu-{run_id}-{number}", patient_ids[number % len(patient_ids)])
                response = await client.post("/v1/fhir/notifications", json=document)
                if response.status_code != 200 or response.json()["triggered"] != 1:
                    raise SystemExit(f"notification {number}: {response.status_code} {response.text}")

            for number in range(warmup):
                await post(notifications + number)
            statements.clear()
            spent[0] = 0.0
            for number in range(notifications):
                await post(number)
    print(
        f"app CPU per notification   {1000 * spent[0] / notifications:.2f} ms ({notifications} notifications)"
    )
    print(f"statements per notification {sum(statements.values()) / notifications:.2f}")
    for (statement, stats), seen in statements.most_common():
        print(f"  {seen / notifications:5.2f}  {stats:<9} {statement}")
    print(f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notifications", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30, help="notifications before measuring")
    parser.add_argument("--stack-port", type=int, default=18740)
    arguments = parser.parse_args()
    with dev_stack(arguments.stack_port, environment=ANY_HOUR) as stack:
        api = next(
            child
            for child in psutil.Process(stack.process.pid).children()
            if "aftercare api" in " ".join(child.cmdline())
        )
        asyncio.run(measure(api.environ(), arguments.notifications, arguments.warmup))


if __name__ == "__main__":
    main()
