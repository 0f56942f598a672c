"""HL7 v2 ADT intake in-process: SQL statements, commits and CPU time per message by batch size.

    python bench/adt_statements.py [--messages 128] [--batches 1,4,32] [--postgres URL]

A fresh database on the local PostgreSQL (the test suite's helper makes and drops it), a Temporal dev
server of its own, the ADT bench's discharge journey, and `AdtIntake.handle_batch` fed A01 admissions
and then A03 discharges (the same patients) in batches of each size, as group commit hands them over
when that many messages arrive together. Statements and commits are counted with SQLAlchemy engine
events; CPU is this process's (`time.process_time`: the intake, SQLAlchemy and the Temporal client),
which a loaded machine distorts much less than rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event
from temporalio.testing import WorkflowEnvironment

from aftercare.db.engine import create_engine, session_factory
from aftercare.devstack.temporal_server import dev_server_tuning_args, temporal_cli
from aftercare.hl7v2.intake import AdtIntake, Handled
from aftercare.hl7v2.server import intake_for
from aftercare.security.codec import new_codec_key
from aftercare.settings import Settings
from aftercare.store.journeys import publish_journey
from aftercare.temporal.client import data_converter
from bench.adt import JOURNEY, message
from models.journey import JourneyDefinition
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from tests.conftest import create_test_database, drop_test_database


async def row(intake: AdtIntake, counts: dict[str, int], sample: str, texts: list[str], size: int) -> str:
    counts.update(statements=0, commits=0)
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(texts), size):
        for outcome in await intake.handle_batch(texts[start : start + size]):
            if not isinstance(outcome, Handled) or outcome.code != "AA":
                raise SystemExit(f"{sample}: {outcome!r}")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(texts)
    return (
        f"| {sample[:3].upper()} | {size} | {counts['statements'] / n:.1f} | {counts['commits'] / n:.2f} | "
        f"{cpu / n * 1000:.1f} ms | {n / wall:.0f} | {os.getloadavg()[0]:.1f} |"
    )


async def measure(url: str, arguments: argparse.Namespace) -> None:
    settings = Settings(
        database_url=url,
        temporal_task_queue="bench-adt-statements",
        twilio_account_sid=None,
        twilio_auth_token=None,
        twilio_from_number=None,
        hospital_timezone="America/New_York",
        aftercare_codec_keys=new_codec_key("bench"),
        _env_file=None,
    )
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(settings),
        dev_server_existing_path=temporal_cli(),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
        dev_server_extra_args=dev_server_tuning_args(),
    )
    engine = create_engine(url, pool_size=10)
    counts = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", statement)
    event.listen(engine.sync_engine, "commit", commit)
    try:
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            await publish_journey(session, JourneyDefinition.model_validate(JOURNEY))
        intake = intake_for(settings, sessions, env.client)
        run = uuid.uuid4().hex[:5]
        await intake.handle_batch([message("a01_admit", f"w{run}", i) for i in range(10)])  # warm-up
        print(
            "| event | batch | SQL statements/msg | commits/msg | CPU/msg (intake process) | msg/s | load |"
        )
        print("|---|---|---|---|---|---|---|")
        for number, size in enumerate(int(size) for size in arguments.batches.split(",")):
            for sample in ("a01_admit", "a03_discharge"):
                texts = [message(sample, f"{number}{run}", i) for i in range(arguments.messages)]
                print(await row(intake, counts, sample, texts, size), flush=True)
    finally:
        await engine.dispose()
        await env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=128, help="messages per row")
    parser.add_argument("--batches", default="1,4,32", help="batch sizes, comma-separated")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AFTERCARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    arguments = parser.parse_args()
    url = create_test_database(arguments.postgres)
    try:
        asyncio.run(measure(url, arguments))
    finally:
        drop_test_database(arguments.postgres, url)


if __name__ == "__main__":
    main()
