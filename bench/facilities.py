"""Facilities: what scoping costs on the trigger path and in segment evaluation, with one facility and
with a second one.

    python bench/facilities.py                       # both parts, small enough for a few minutes
    python bench/facilities.py --part segments --patients 1000000
    python bench/facilities.py --part triggers --rate 20 --duration 30

Triggers: one `aftercare dev --no-demo` stack; FHIR Observations at a steady rate (as in
`bench/trigger_latency.py`) three ways: the install's one default facility and a whole-group key;
two facilities (`north`, `south`, patients split between them by `managingOrganization`) and a
whole-group key; and the same with a key of `north` only, so every transaction of the notification
runs under row-level security. It prints the server and client p50/p95/p99 of each.

Segments: a fresh database with synthetic patients and facts (`bench/segments.py`'s generator), every
patient in the default facility; each predefined segment evaluated (one warm-up round, then timed, each
in a transaction of its own as a request's) with one facility, then after splitting the patients
between two facilities, for the whole group and for one facility, the two taking turns. A scoped
caller's evaluation filters by facility itself (`explicit_scope`), so it uses the same indexes. Each
figure is a median of wall time and of the server backend's CPU time (read from `/proc` when the server
runs on this machine; load stretches the first, not the second).
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.db.engine import create_engine, session_factory
from aftercare.db.migrate import libpq_dsn
from aftercare.facilities.scope import enter_scope, request_boundary
from aftercare.segments.evaluate import members
from aftercare.segments.library import segment_library
from bench.population import create_database, drop_database
from bench.segments import generate
from bench.stack import dev_stack
from bench.trigger_latency import ANY_HOUR, JOURNEY, TEMPLATE, collect, drive, percentiles, recorded

FACILITIES = [
    {"key": "north", "name": "North", "timezone": "America/New_York", "parent": "default",
     "organization": "Organization/bench-north"},
    {"key": "south", "name": "South", "timezone": "America/Chicago", "parent": "default",
     "organization": "Organization/bench-south"},
]  # fmt: skip


FACILITY_FIELDS = ("key", "name", "timezone", "parent", "organization")
ADD_FACILITY = (
    "INSERT INTO facilities (key, name, timezone, parent, organization) VALUES (%s, %s, %s, %s, %s)"
)
PLACE_ALL_IN_DEFAULT = (
    "INSERT INTO patient_facilities (patient_id, facility, source) "
    "SELECT id, 'default', 'default' FROM patients"
)
# Half to north, half to south, by a hash (the generator spreads facts by modulo of the patient number).
SPLIT_IN_TWO = (
    "UPDATE patient_facilities SET facility = "
    "CASE WHEN hashtext(patient_id) % 2 = 0 THEN 'north' ELSE 'south' END"
)


def patients(count: int, run_id: str, organizations: list[str | None]) -> str:
    """NDJSON of synthetic patients, managed in turn by each of `organizations`."""
    lines = []
    for number in range(count):
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": f"bench-{run_id}-{number}",
            "name": [{"given": [f"Bench{number}"], "family": "Patient"}],
            "telecom": [{"system": "phone", "value": f"617-555-{number % 10000:04d}", "use": "mobile"}],
            "birthDate": "1960-01-01",
        }
        organization = organizations[number % len(organizations)]
        if organization:
            patient["managingOrganization"] = {"reference": organization}
        lines.append(json.dumps(patient))
    return "\n".join(lines)


async def trigger_run(
    client: httpx.AsyncClient,
    driver: httpx.AsyncClient,
    organizations: list[str | None],
    arguments: argparse.Namespace,
) -> dict[str, dict[str, float]]:
    """One measured run: import patients, warm up, drive, collect; percentiles by span."""
    run_id = uuid.uuid4().hex[:8]
    imported = await client.post(
        "/v1/fhir/import",
        params={"triggers": "false"},
        content=patients(arguments.patients_per_run, run_id, organizations),
        headers={"content-type": "application/fhir+ndjson"},
    )
    imported.raise_for_status()
    # A run's Observations go to the patients of the first organization only (the scoped key's).
    ids = [f"bench-{run_id}-{n}" for n in range(0, arguments.patients_per_run, len(organizations))]
    warm = await drive(driver, ids, arguments.rate, arguments.warmup, f"{run_id}-warmup")
    run = await drive(driver, ids, arguments.rate, arguments.duration, run_id)
    # Observations answered 503 (a saturated machine) start nothing: wait only for the others.
    accepted = len(warm.sent_at) - len(warm.errors) + len(run.sent_at) - len(run.errors)
    rows = await collect(client, await recorded(client, accepted, run_id))
    measured = [row for row in rows if row["observation"] in run.sent_at]
    server = [(row["sent_at"] - row["received_at"]) * 1000 for row in measured]
    client_side = [(row["sent_at"] - run.sent_at[row["observation"]]) * 1000 for row in measured]
    if run.errors:
        print(f"  {len(run.errors)} errors, the first: {run.errors[0][:160]}")
    print(f"  {len(measured)} of {len(run.sent_at)} messages recorded")
    if len(measured) < 2:
        raise SystemExit("too few messages recorded to measure (see the stack's log)")
    return {"server": percentiles(server), "client": percentiles(client_side)}


async def triggers(arguments: argparse.Namespace) -> None:
    """The trigger path with one facility, with two, and with a key of one of two."""
    # Measured at any hour: quiet hours would defer the texts instead of timing them.
    os.environ.setdefault("QUIET_HOURS_START", "")
    os.environ.setdefault("QUIET_HOURS_END", "")
    with dev_stack(arguments.stack_port, environment=ANY_HOUR) as stack:
        headers = {"X-API-Key": stack.api_key}
        async with httpx.AsyncClient(base_url=stack.api, timeout=30.0, headers=headers) as client:
            (await client.post("/v1/templates", json=TEMPLATE)).raise_for_status()
            assert (await client.post("/v1/journeys", json=JOURNEY)).status_code in (200, 201)
            results = {"one facility, whole-group key": await trigger_run(client, client, [None], arguments)}
            for facility in FACILITIES:
                (await client.post("/v1/facilities", json=facility)).raise_for_status()
            organizations: list[str | None] = [str(facility["organization"]) for facility in FACILITIES]
            results["two facilities, whole-group key"] = await trigger_run(
                client, client, organizations, arguments
            )
            made = await client.post(
                "/v1/api-keys", json={"name": "bench-north", "roles": ["trigger"], "facilities": ["north"]}
            )
            made.raise_for_status()
            north = {"X-API-Key": made.json()["key"]}
            async with httpx.AsyncClient(base_url=stack.api, timeout=30.0, headers=north) as scoped:
                results["two facilities, key of north only"] = await trigger_run(
                    client, scoped, organizations, arguments
                )
    print(f"\ntrigger path at {arguments.rate:g}/s for {arguments.duration:g} s each")
    print(f"{'configuration':<36} {'server p50/p95/p99 ms':>24} {'client p50/p95/p99 ms':>24}")
    for name, spans in results.items():
        cells = ["{p50:.0f} / {p95:.0f} / {p99:.0f}".format(**spans[span]) for span in ("server", "client")]
        print(f"{name:<36} {cells[0]:>24} {cells[1]:>24}")


def backend_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the PostgreSQL backend `pid` has used; NaN when the server is not
    on this machine. Load on a shared machine stretches wall time, not this."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def evaluate(
    url: str, scopes: list[frozenset[str] | None], repeats: int
) -> list[dict[str, tuple[int, float, float]]]:
    """Each predefined segment evaluated as a caller of each scope (None: the whole group), as a request
    would (a session and transaction of its own): members, and the medians of `repeats` timed
    evaluations after a warm-up round, wall time and the server backend's CPU time. The scopes take
    turns, so a burst of load on the shared machine hits them alike."""
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    results: list[dict[str, tuple[int, float, float]]] = [{} for _ in scopes]
    try:
        as_of = datetime.now(UTC)
        for segment in segment_library():
            timings: list[list[tuple[float, float]]] = [[] for _ in scopes]
            for turn in range(repeats + 1):
                for index, scope in enumerate(scopes):
                    with request_boundary():
                        enter_scope(scope or frozenset())
                        async with sessions() as session:
                            pid = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
                            started, cpu = time.perf_counter(), backend_cpu(pid)
                            found = await members(session, segment, as_of)
                            span = (time.perf_counter() - started, backend_cpu(pid) - cpu)
                    if turn:
                        timings[index].append(span)
                    results[index][segment.key] = (len(found), 0.0, 0.0)
            for index, measured in enumerate(timings):
                results[index][segment.key] = (
                    results[index][segment.key][0],
                    statistics.median(wall for wall, _ in measured),
                    statistics.median(used for _, used in measured),
                )
    finally:
        await engine.dispose()
    return results


def segments(arguments: argparse.Namespace) -> None:
    """Segment timings with one facility, with two (whole group), and for one of two."""
    url = create_database(arguments.server)
    try:
        print(f"generating {arguments.patients:,} patients")
        generate(url, arguments.patients)
        with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
            connection.execute(PLACE_ALL_IN_DEFAULT)
            connection.execute("VACUUM ANALYZE patient_facilities")
        [one] = asyncio.run(evaluate(url, [None], arguments.repeats))
        with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
            for facility in FACILITIES:
                connection.execute(ADD_FACILITY, [facility[field] for field in FACILITY_FIELDS])
            connection.execute(SPLIT_IN_TWO)
            connection.execute("VACUUM ANALYZE patient_facilities")  # as autovacuum leaves it
        group, north = asyncio.run(evaluate(url, [None, frozenset({"north"})], arguments.repeats))
    finally:
        drop_database(arguments.server, url)
    print(
        f"\nsegments over {arguments.patients:,} patients (medians of {arguments.repeats}: "
        "wall seconds / server CPU seconds; members)"
    )
    columns = ("one facility", "two, whole group", "two, north only", "north/group CPU")
    print(f"{'segment':<28} {columns[0]:>26} {columns[1]:>26} {columns[2]:>26} {columns[3]:>16}")
    for key in one:
        cells = [
            f"{runs[key][1]:.3f} / {runs[key][2]:.2f} s ({runs[key][0]:,})" for runs in (one, group, north)
        ]
        ratio = north[key][2] / group[key][2] if group[key][2] else float("nan")
        print(f"{key:<28} {cells[0]:>26} {cells[1]:>26} {cells[2]:>26} {ratio:>16.2f}")


def main() -> None:
    """Run the parts asked for."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["both", "triggers", "segments"], default="both")
    parser.add_argument("--patients", type=int, default=200_000, help="patients for the segment part")
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluations per segment (median)")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--patients-per-run", type=int, default=200)
    parser.add_argument("--stack-port", type=int, default=18760)
    arguments = parser.parse_args()
    if arguments.part in ("both", "segments"):
        segments(arguments)
    if arguments.part in ("both", "triggers"):
        asyncio.run(triggers(arguments))


if __name__ == "__main__":
    main()
