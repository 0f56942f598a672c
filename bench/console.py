"""The console's pages on a large database: p50 and p95 server time of each page.

    python bench/console.py            # 100,000 patients, 1,000,000 messages, 10,000 enrollments
    python bench/console.py --patients 20000 --messages 200000 --enrollments 2000 --requests 30

It creates a fresh database, generates the rows in SQL (patients with names and phones; messages over
the last week on three channels in every status; enrollments of the demo journey at its steps, with
their step history; open care tasks), publishes the demo journey and templates, a segment and a
campaign, and then asks the app (in this process, through ASGI, signed in with the development key) for
each page `--requests` times after two warm-ups. Server time is the time the app takes to answer,
without a network. The home page's counts are cached for 5 s: it is measured both as served (cached)
and with its counts computed each time. Goal: p95 < 150 ms for every page, < 50 ms for the home page.
Needs PostgreSQL (127.0.0.1:5432, else embedded); Temporal is not needed (pages that only read never
call it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import yaml
from pydantic import SecretStr
from sqlalchemy import text

from aftercare.analytics.rebuild import rebuild
from aftercare.db.engine import create_engine, session_factory
from aftercare.settings import Settings
from aftercare.store.journeys import publish_journey
from aftercare.store.segments import publish_segment
from aftercare.store.templates import publish_template
from api.app import create_app
from bench.channels import database
from bench.cost import CpuMeter, TrackedProcesses, database_backends, this_process
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition
from models.template import TemplateDefinition

DEV_KEY = f"ak_dev_bench{uuid.uuid4().hex}"
DEMO = Path(__file__).resolve().parents[1] / "aftercare" / "demo" / "definitions"
STEPS = ("notify", "await-reply", "route", "escalate", "thanks", "done")
GENERATE = [
    """
    INSERT INTO patients (id, version_id, name, given, family, birth_date, gender, phone, phone_status,
                          language, timezone)
    SELECT 'p' || n, '1', 'Pat' || n || ' Bench' || (n % 977), 'Pat' || n, 'Bench' || (n % 977),
           date '1940-01-01' + (n * 7919 % 20000), CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END,
           '+1555' || lpad((n % 10000000)::text, 7, '0'), 'valid', 'en', 'America/New_York'
    FROM generate_series(1, :patients) AS n
    """,
    """
    INSERT INTO messages (id, idempotency_key, patient_id, journey_key, step_id, channel, "to", body,
                          status, created_at, updated_at)
    SELECT 'm' || n, 'bench:' || n, 'p' || (n % :patients + 1), 'hba1c-followup', 'notify',
           (ARRAY['sms', 'email', 'letter'])[n % 3 + 1], '+15550000000', 'Hello from the bench',
           (ARRAY['sent', 'sent', 'delivered', 'skipped', 'failed', 'queued'])[n % 6 + 1],
           now() - make_interval(secs => (n * 0.6048)::int % 604800),
           now()
    FROM generate_series(1, :messages) AS n
    """,
    """
    INSERT INTO enrollments (id, journey_key, journey_version, patient_id, status, current_step, trigger,
                             context, exclusive, once_only, workflow_id)
    SELECT 'e' || n, 'hba1c-followup', 1, 'p' || (n * 7 % :patients + 1),
           CASE WHEN n % 3 = 0 THEN 'completed' ELSE 'running' END,
           (ARRAY['notify', 'await-reply', 'route', 'escalate', 'thanks', 'done'])[n % 6 + 1],
           '{}', '{}', false, false, 'enrollment-e' || n
    FROM generate_series(1, :enrollments) AS n
    """,
    """
    INSERT INTO enrollment_steps (enrollment_id, seq, step, at, result)
    SELECT 'e' || n, s, (ARRAY['notify', 'await-reply', 'route', 'escalate', 'thanks', 'done'])[s],
           now() - make_interval(mins => s), 'done'
    FROM generate_series(1, :enrollments) AS n, generate_series(1, 3) AS s
    """,
    """
    INSERT INTO tasks (id, idempotency_key, queue, priority, title, patient_id, enrollment_id, due_at)
    SELECT 't' || n, 'bench:' || n, 'care-coordinators', 'normal', 'Call the patient', 'p' || n, 'e' || n,
           now() + make_interval(hours => n % 48)
    FROM generate_series(1, :tasks) AS n
    """,
]


async def populate(settings: Settings, args: argparse.Namespace) -> None:
    """Generate the rows and publish the definitions."""
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    started = time.perf_counter()
    sizes = {
        "patients": args.patients,
        "messages": args.messages,
        "enrollments": args.enrollments,
        "tasks": min(1000, args.enrollments),
    }
    async with sessions.begin() as session:
        # Row triggers (the analytics rollups) are skipped while the rows are generated in bulk; the
        # rollups are then recomputed from the facts in one pass, as `aftercare analytics rebuild` does.
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in GENERATE:
            await session.execute(text(statement), sizes)
        for path in sorted(DEMO.glob("hba1c-high.*.yaml")):
            await publish_template(
                session, TemplateDefinition.model_validate(yaml.safe_load(path.read_text()))
            )
        journey = yaml.safe_load((DEMO / "hba1c-followup.journey.yaml").read_text())
        await publish_journey(session, JourneyDefinition.model_validate(journey))
        segment = {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
        await publish_segment(session, SegmentDefinition.model_validate(segment))
    await rebuild(engine)
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("ANALYZE"))
    await engine.dispose()
    print(f"generated {sizes} in {time.perf_counter() - started:.0f} s", flush=True)


def pages(args: argparse.Namespace) -> dict[str, tuple[str, str, dict[str, str] | None]]:
    """Name → (method, path, form)."""
    return {
        "home (cached counts)": ("GET", "/console", None),
        "patients: search by name": ("GET", "/console/patients?q=Pat4242", None),
        "patients: search by phone": ("GET", "/console/patients?q=555-000-4242", None),
        "patient 360": ("GET", "/console/patients/p4242", None),
        "care tasks": ("GET", "/console/tasks", None),
        "journeys": ("GET", "/console/journeys", None),
        "journey graph with counts": ("GET", "/console/journeys/hba1c-followup", None),
        "journey editor": ("GET", "/console/journeys/hba1c-followup/editor", None),
        "enrollment": ("GET", "/console/enrollments/e42", None),
        "templates": ("GET", "/console/templates", None),
        "template preview": ("POST", "/console/templates/hba1c-high/preview", {"patient_id": "p4242"}),
        "segments": ("GET", "/console/segments", None),
        "segment preview": ("GET", "/console/segments/adults", None),
        "campaigns": ("GET", "/console/campaigns", None),
        "operations": ("GET", "/console/operations", None),
        "audit": ("GET", "/console/audit", None),
    }


async def measure(
    client: httpx.AsyncClient, method: str, path: str, form: dict[str, str] | None, requests: int
) -> list[float]:
    """Milliseconds per request, after two warm-ups."""
    times = []
    for attempt in range(requests + 2):
        started = time.perf_counter()
        answer = await client.request(method, path, data=form)
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        if attempt >= 2:
            times.append(elapsed)
    return times


def p95(times: list[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(times, n=20, method="inclusive")[18]


async def run(settings: Settings, args: argparse.Namespace) -> None:
    """Measure every page; print a table: latency, and CPU per request of the app and of PostgreSQL
    (which a loaded machine does not inflate)."""
    app = create_app(settings)
    watcher = create_engine(settings.database_url)
    backends = TrackedProcesses("postgres")
    meter = CpuMeter([this_process("app"), backends])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"X-API-Key": DEV_KEY}, timeout=60
        ) as client:
            print(
                "| page | p50 ms | p95 ms | CPU ms per request (app + PostgreSQL) | goal |\n"
                "|---|---|---|---|---|"
            )
            for name, (method, path, form) in pages(args).items():
                await measure(client, method, path, form, 0)  # warm, and open the pool's connections
                backends.track(await database_backends(watcher))
                meter.start()
                times = await measure(client, method, path, form, args.requests)
                backends.track(await database_backends(watcher))
                spent = meter.since_start()
                own, database = spent["app"], spent["postgres"]
                each = 1000 / (args.requests + 2)  # the measured calls include two warm-ups
                cpu = f"{(own + database) * each:.0f} ({own * each:.0f} + {database * each:.0f})"
                goal = 50 if name.startswith("home") else 150
                mark = "✓" if p95(times) < goal else "✗"
                latency = f"{statistics.median(times):.0f} | {p95(times):.0f}"
                print(f"| {name} | {latency} | {cpu} | < {goal} {mark} |", flush=True)
            uncached = []
            for _ in range(args.requests):
                app.state.console_counts = {}
                started = time.perf_counter()
                answer = await client.get("/console")
                uncached.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
            print(
                f"| home (counts computed) | {statistics.median(uncached):.0f} | {p95(uncached):.0f} | | — |"
            )
    await watcher.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--enrollments", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with database() as url:
        settings = Settings(
            database_url=url,
            aftercare_env="development",
            aftercare_dev_api_key=SecretStr(DEV_KEY),
            _env_file=None,
        )
        await populate(settings, args)
        await run(settings, args)


if __name__ == "__main__":
    asyncio.run(main())
