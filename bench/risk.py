"""Readmission risk: what scoring adds to the trigger path, and how fast every discharge is re-scored.

    python bench/risk.py                                   # small: a minute or two
    python bench/risk.py --patients 100000 --trigger-samples 500

A fresh database on the server. Each synthetic patient has one inpatient stay (its discharge), three
emergency visits in the year before and four conditions (ICD-10 and SNOMED CT, some Charlson). Two
measures:

- trigger path: storing one new discharge with `store_resources` (what a notification or an ADT A03
  does, clinical facts, the LACE/HOSPITAL scores and the TCM episode included), timed with scoring and
  with scoring switched off, over `--trigger-samples` discharges each; the difference of the p99s is
  what scoring adds (target: under 20 ms);
- re-scoring: `rescore_patients` over every patient (target: at least 2,000 discharges/s).

Each figure comes with the process CPU time it took (this Python process, not PostgreSQL's) and the load
average, since wall times on a shared machine say more about the machine than the code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aftercare.store.derived as derived
from aftercare.db.engine import create_engine, session_factory
from aftercare.db.migrate import libpq_dsn
from aftercare.store.resources import store_resources
from aftercare.store.risk_scores import record_risk_scores, rescore_patients
from bench.cost import process_cpu_seconds
from bench.population import create_database, drop_database

NOW = datetime.now(UTC).replace(microsecond=0)
HOOK = "record_risk_scores"  # what `record_derived` calls to score discharges
CODES = [
    ("http://hl7.org/fhir/sid/icd-10", "I50.9"),
    ("http://snomed.info/sct", "13645005"),
    ("http://hl7.org/fhir/sid/icd-10", "E11.22"),
    ("http://snomed.info/sct", "38341003"),
]


def encounter(patient: str, name: str, klass: str, start: datetime, hours: float) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": f"{patient}-{name}",
        "status": "finished",
        "class": {"code": klass},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()},
    }


def history(patient: str, number: int) -> list[dict[str, Any]]:
    """A patient's visits and conditions (the discharge is the stay ending 1-20 days ago)."""
    discharge = NOW - timedelta(days=1 + number % 20, hours=number % 7)
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": patient, "name": [{"family": "Risk", "given": [f"R{number}"]}]},
        encounter(
            patient, "stay", "IMP", discharge - timedelta(days=1 + number % 15), 24 * (1 + number % 15)
        ),
    ]
    resources += [
        encounter(patient, f"ed-{n}", "EMER", discharge - timedelta(days=40 + 90 * n), 4) for n in range(3)
    ]
    resources += [
        {
            "resourceType": "Condition",
            "id": f"{patient}-c{n}",
            "subject": {"reference": f"Patient/{patient}"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": system, "code": code}]},
        }
        for n, (system, code) in enumerate(CODES)
    ]
    return resources


def load(url: str, patients: int, batch: int = 2000) -> list[str]:
    """Synthetic patients stored through `store_resources` (facts, scores and episodes made as they go)."""
    ids = [f"risk-{n}" for n in range(patients)]

    async def run() -> None:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            for start in range(0, patients, batch):
                resources = [
                    r for n in range(start, min(start + batch, patients)) for r in history(ids[n], n)
                ]
                async with sessions.begin() as session:
                    await store_resources(
                        session, resources, source="bench", phone_region="US", fire_triggers=False
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())
    return ids


async def backend_pid(session: Any) -> int:
    """The PostgreSQL backend process of the session's connection."""
    return int(await session.scalar(text("SELECT pg_backend_pid()")))


def server_cpu_ms(pid: int, before: float | None, count: int) -> float | None:
    """Milliseconds of the backend's CPU per operation since `before` (None when not measurable)."""
    after = process_cpu_seconds(pid)
    return (after - before) * 1000 / count if after is not None and before is not None and count else None


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {f"p{q}": ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] for q in (50, 95, 99)}


async def trigger_path(url: str, samples: int, scoring: bool) -> dict[str, float]:
    """Milliseconds to store one new discharge of an existing patient, with or without scoring (wall
    percentiles, and `cpu_p50`, `cpu_p99`: this process's CPU time per discharge)."""
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    original = record_risk_scores

    async def nothing(session: Any, resources: Any) -> int:
        return 0

    setattr(derived, HOOK, original if scoring else nothing)
    timings, cpu = [], []
    async with sessions() as session:  # one pooled connection: every sample runs on this backend
        pid = await backend_pid(session)
    server_before = process_cpu_seconds(pid)
    try:
        for n in range(samples):
            stay = encounter(f"risk-{n}", f"again-{uuid.uuid4().hex[:8]}", "IMP", NOW - timedelta(days=2), 30)
            started, cpu_started = time.perf_counter(), time.process_time()
            async with sessions.begin() as session:
                await store_resources(session, [stay], source="bench", phone_region="US", fire_triggers=False)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
    finally:
        setattr(derived, HOOK, original)
        await engine.dispose()
    spread = percentiles(cpu)
    server = server_cpu_ms(pid, server_before, samples)
    return {
        **percentiles(timings),
        "cpu_p50": spread["p50"],
        "cpu_p99": spread["p99"],
        "cpu_mean": sum(cpu) / len(cpu),
        "server_cpu_mean": server if server is not None else float("nan"),
    }


async def rescore(url: str, ids: list[str]) -> tuple[int, float, float, float | None]:
    """Every discharge scored again; (scores, seconds, CPU seconds of this process, milliseconds of the
    server's CPU a score)."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async with sessions.begin() as session:
            pid = await backend_pid(session)
            server_before = process_cpu_seconds(pid)
            started, cpu_started = time.perf_counter(), time.process_time()
            scored = await rescore_patients(session, ids)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            server = server_cpu_ms(pid, server_before, scored)
        return scored, seconds, cpu_seconds, server
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--trigger-samples", type=int, default=200)
    arguments = parser.parse_args()
    assert getattr(derived, HOOK) is record_risk_scores  # the hook this bench switches off
    url = create_database(arguments.server)
    try:
        started = time.perf_counter()
        ids = load(url, arguments.patients)
        print(f"stored {arguments.patients:,} patients in {time.perf_counter() - started:.1f} s")
        with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
            connection.execute("ANALYZE")
        samples = min(arguments.trigger_samples, arguments.patients)
        load_before = os.getloadavg()
        without = asyncio.run(trigger_path(url, samples, scoring=False))
        with_scoring = asyncio.run(trigger_path(url, samples, scoring=True))
        scored, seconds, cpu_seconds, server_ms = asyncio.run(rescore(url, ids))
        load_after = os.getloadavg()
    finally:
        drop_database(arguments.server, url)
    print(f"\nload average (1, 5, 15 min) before {load_before}, after {load_after}")
    print(
        f"storing one discharge ({samples} samples), ms p50 / p95 / p99"
        " (CPU of this process p50 / p99 / mean; of the server, mean)"
    )
    for name, spans in (("without scoring", without), ("with scoring", with_scoring)):
        print(
            f"  {name:<18} {spans['p50']:.1f} / {spans['p95']:.1f} / {spans['p99']:.1f}"
            f"  (CPU {spans['cpu_p50']:.1f} / {spans['cpu_p99']:.1f} / {spans['cpu_mean']:.1f};"
            f" server {spans['server_cpu_mean']:.1f})"
        )
    print(
        f"  scoring adds: p50 {with_scoring['p50'] - without['p50']:.1f} ms,"
        f" p99 {with_scoring['p99'] - without['p99']:.1f} ms (target < 20);"
        f" CPU mean {with_scoring['cpu_mean'] - without['cpu_mean']:.1f} ms here"
        f" + {with_scoring['server_cpu_mean'] - without['server_cpu_mean']:.1f} ms in the server"
    )
    client_ms = cpu_seconds / scored * 1000
    server_text = f" + {server_ms:.3f} ms in the server" if server_ms is not None else ""
    print(
        f"\nre-scoring {scored:,} scores: {seconds:.1f} s, {scored / seconds:,.0f}/s (target >= 2,000/s);"
        f" CPU {client_ms:.3f} ms a score here{server_text}"
    )
    print(
        json.dumps(
            {
                "without": without,
                "with": with_scoring,
                "rescored": scored,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "server_cpu_ms_per_score": server_ms,
                "load": [load_before, load_after],
            }
        )
    )


if __name__ == "__main__":
    main()
