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

Segments: a fresh database with synthetic patients and facts (`bench/segments.py`'s generator; or
`--database`, one an earlier `--keep` run filled), every patient in the default facility; each
predefined segment evaluated (one warm-up round, then `--rounds` rounds, each evaluation in a
transaction of its own as a request's) with one facility, then after splitting the patients between two
facilities (each placing rewrites every patient row's `facility_bits`, so `patients` is compacted after
it, `VACUUM FULL`, as after a bulk import) by three callers taking turns: the whole group; a caller
scoped to both facilities, who gets the same members, so the difference is scoping's own cost; and a
caller scoped to `north` (half the members). A scoped caller's evaluation filters by facility itself
(`explicit_scope`). The figure is the server backend's CPU time for the segment's statement, read from
the scheduler's count (`/proc/<pid>/schedstat`, nanoseconds: the server must run on this machine)
around it, with parallel workers off (`--parallel` allows them, but their CPU is then not seen), so a
loaded machine neither stretches it nor rounds it to 10 ms; medians and quartiles over the rounds, and
the scoped callers' ratios to the whole group's paired round by round. `--explain KEY ...` prints
`EXPLAIN (ANALYZE, BUFFERS)` of those segments' statements for the whole group and the caller of both
facilities.

    python bench/facilities.py --part segments --patients 1000000 --keep --explain discharged-last-7-days
    python bench/facilities.py --part segments --database <kept url> --segments discharged-last-7-days
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.db.engine import create_engine, session_factory
from aftercare.db.migrate import libpq_dsn
from aftercare.facilities.scope import enter_scope, request_boundary
from aftercare.segments.evaluate import members
from aftercare.segments.library import segment_library
from bench.cost import CpuMeter, on_cpu_ns, stack_processes
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


@dataclass
class Measured:
    """What one configuration gave over every run of it: latencies, CPU per process, runs' p99s."""

    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    triggers: int = 0
    run_p99s: list[float] = field(default_factory=list)

    def add(self, server: list[float], client: list[float], cpu: dict[str, float]) -> None:
        self.server += server
        self.client += client
        self.triggers += len(server)
        self.run_p99s.append(percentiles(server)["p99"])
        for name, seconds in cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def cpu_ms(self, names: tuple[str, ...]) -> float:
        """CPU milliseconds per trigger of the named processes together."""
        return sum(self.cpu.get(name, 0.0) for name in names) * 1000 / max(self.triggers, 1)


async def trigger_run(
    client: httpx.AsyncClient,
    driver: httpx.AsyncClient,
    organizations: list[str | None],
    arguments: argparse.Namespace,
    meter: CpuMeter,
) -> tuple[list[float], list[float], dict[str, float]]:
    """One measured run: import patients, warm up, drive, collect: server and client milliseconds per
    message, and each process's CPU seconds from the load's start until its last message was sent."""
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
    warmed = len(warm.sent_at) - len(warm.errors)  # a 503 starts nothing
    await recorded(client, warmed, run_id)
    meter.start()
    run = await drive(driver, ids, arguments.rate, arguments.duration, run_id)
    rows = await recorded(client, warmed + len(run.sent_at) - len(run.errors), run_id)
    spent = meter.since_start()
    rows = await collect(client, rows)
    measured = [row for row in rows if row["observation"] in run.sent_at]
    server = [(row["sent_at"] - row["received_at"]) * 1000 for row in measured]
    client_side = [(row["sent_at"] - run.sent_at[row["observation"]]) * 1000 for row in measured]
    if run.errors:
        print(f"  {len(run.errors)} errors, the first: {run.errors[0][:160]}")
    print(f"  {len(measured)} of {len(run.sent_at)} messages recorded", flush=True)
    if len(measured) < 2:
        raise SystemExit("too few messages recorded to measure (see the stack's log)")
    return server, client_side, spent


ONE = "one facility, whole-group key"
TWO_WHOLE = "two facilities, whole-group key"
TWO_NORTH = "two facilities, key of north only"


async def trigger_stack(
    arguments: argparse.Namespace, two: bool, flip: bool, results: dict[str, Measured]
) -> None:
    """A fresh stack with one facility (two runs of the whole-group key) or two (a run of each key, in
    the order `flip` says), so every configuration's runs sit at the same places in a stack's life."""
    with dev_stack(arguments.stack_port, environment=ANY_HOUR) as stack:
        meter = CpuMeter(stack_processes(stack))
        headers = {"X-API-Key": stack.api_key}
        async with httpx.AsyncClient(base_url=stack.api, timeout=30.0, headers=headers) as client:
            (await client.post("/v1/templates", json=TEMPLATE)).raise_for_status()
            assert (await client.post("/v1/journeys", json=JOURNEY)).status_code in (200, 201)
            if not two:
                for _ in range(2):
                    print(f"{ONE}", flush=True)
                    results[ONE].add(*await trigger_run(client, client, [None], arguments, meter))
                return
            for facility in FACILITIES:
                (await client.post("/v1/facilities", json=facility)).raise_for_status()
            made = await client.post(
                "/v1/api-keys", json={"name": "bench-north", "roles": ["trigger"], "facilities": ["north"]}
            )
            made.raise_for_status()
            north = {"X-API-Key": made.json()["key"]}
            organizations: list[str | None] = [str(facility["organization"]) for facility in FACILITIES]
            async with httpx.AsyncClient(base_url=stack.api, timeout=30.0, headers=north) as scoped:
                drivers = [(TWO_WHOLE, client), (TWO_NORTH, scoped)]
                for name, driver in reversed(drivers) if flip else drivers:
                    print(name, flush=True)
                    results[name].add(*await trigger_run(client, driver, organizations, arguments, meter))


async def triggers(arguments: argparse.Namespace) -> None:
    """The trigger path with one facility, with two, and with a key of one of two: `--trigger-rounds`
    rounds, each a fresh one-facility stack and a fresh two-facility stack (their order alternating)."""
    # Measured at any hour: quiet hours would defer the texts instead of timing them.
    os.environ.setdefault("QUIET_HOURS_START", "")
    os.environ.setdefault("QUIET_HOURS_END", "")
    results = {name: Measured() for name in (ONE, TWO_WHOLE, TWO_NORTH)}
    for round_number in range(arguments.trigger_rounds):
        order = [False, True] if round_number % 2 == 0 else [True, False]
        for two in order:
            await trigger_stack(arguments, two, flip=round_number % 2 == 1, results=results)
    print(
        f"\ntrigger path at {arguments.rate:g}/s, {arguments.trigger_rounds} rounds of a fresh stack "
        "each way, "
        f"2 runs of {arguments.duration:g} s per configuration a round; load average "
        f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )
    print(
        f"{'configuration':<36} {'texts':>6} {'server p50/p95/p99 ms':>22} {'client p50/p95/p99 ms':>22} "
        f"{'runs p99 ms':>22} {'CPU/trigger api+worker+pg, all ms':>34}"
    )
    application, everything = ("api", "worker", "postgres"), ("api", "worker", "postgres", "temporal")
    for name, measured in results.items():
        cells = [
            "{p50:.0f} / {p95:.0f} / {p99:.0f}".format(**percentiles(values))
            for values in (measured.server, measured.client)
        ]
        runs = ", ".join(f"{value:.0f}" for value in measured.run_p99s)
        cpu = f"{measured.cpu_ms(application):.1f}, {measured.cpu_ms(everything):.1f}"
        print(f"{name:<36} {measured.triggers:>6} {cells[0]:>22} {cells[1]:>22} {runs:>22} {cpu:>34}")
    base = results[ONE]
    for name in (TWO_WHOLE, TWO_NORTH):
        measured = results[name]
        ratios = [
            percentiles(measured.server)[cut] / percentiles(base.server)[cut] - 1 for cut in ("p50", "p99")
        ]
        cpu_ratio = measured.cpu_ms(everything) / base.cpu_ms(everything) - 1
        per_process = ", ".join(
            f"{process} {measured.cpu_ms((process,)) - base.cpu_ms((process,)):+.2f}"
            for process in everything
        )
        print(
            f"{name} against one facility: server p50 {ratios[0]:+.1%}, p99 {ratios[1]:+.1%} "
            f"(target < 5 %); CPU per trigger {cpu_ratio:+.1%} ({per_process} ms)"
        )


@dataclass
class Sample:
    """One evaluation: wall seconds, and the server backend's CPU nanoseconds for the segment's own
    statement and for every statement of its transaction (the scope's `set_config`, lift and restore)."""

    wall: float
    query_ns: int
    total_ns: int


@dataclass
class StatementCpu:
    """The server backend's CPU per statement of an engine's connections (the scheduler's count, from
    `/proc`, when the server runs on this machine): what a loaded machine does not inflate."""

    statements: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Connection, *_: Any) -> None:
        pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
        conn.info["cpu_at"] = (pid, on_cpu_ns(pid))

    def _after(self, conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        pid, at = conn.info.pop("cpu_at")
        now = on_cpu_ns(pid)
        if at is None or now is None:
            raise SystemExit("the server's processes are not readable here: run the bench beside it")
        self.statements.append((statement, dict(parameters or {}), now - at))


def is_segment_statement(statement: str) -> bool:
    """The members query (the one statement a segment evaluation is about)."""
    return statement.lstrip().startswith("SELECT patients.id") and "ORDER BY patients.id" in statement


def serial(connection: Connection) -> None:
    """No parallel workers for the transaction's statements: the backend that runs a statement then
    does all its work, so its CPU count is the statement's."""
    connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


async def evaluate(
    url: str, scopes: dict[str, frozenset[str] | None], rounds: int, keys: list[str], *, parallel: bool
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, list[Sample]]], dict[str, dict[str, Any]]]:
    """Each chosen segment evaluated as a caller of each scope (None: the whole group), as a request
    would (a session and transaction of its own), one warm-up round and `rounds` measured. In each round
    every scope runs once, in an order that rotates, so load on the shared machine hits them alike.
    Returns members per scope and segment, the samples, and each scope's segment statement (for
    `EXPLAIN`)."""
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    if not parallel:
        event.listen(engine.sync_engine, "begin", serial)
    meter = StatementCpu()
    meter.attach(engine)
    found: dict[str, dict[str, int]] = {name: {} for name in scopes}
    samples: dict[str, dict[str, list[Sample]]] = {name: {} for name in scopes}
    statements: dict[str, dict[str, Any]] = {name: {} for name in scopes}
    try:
        as_of = datetime.now(UTC)
        for segment in [segment for segment in segment_library() if segment.key in keys]:
            names = list(scopes)
            for turn in range(rounds + 1):
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    meter.statements.clear()
                    with request_boundary():
                        enter_scope(scopes[name] or frozenset())
                        started = time.perf_counter()
                        async with sessions() as session:
                            ids = await members(session, segment, as_of)
                        wall = time.perf_counter() - started
                    [(query, parameters, query_ns)] = [
                        row for row in meter.statements if is_segment_statement(row[0])
                    ]
                    total_ns = sum(ns for _, _, ns in meter.statements)
                    found[name][segment.key] = len(ids)
                    statements[name][segment.key] = (query, parameters)
                    if turn:
                        samples[name].setdefault(segment.key, []).append(Sample(wall, query_ns, total_ns))
    finally:
        await engine.dispose()
    return found, samples, statements


def spread(values: list[float]) -> str:
    """Median [lowest quartile - highest quartile]."""
    if len(values) < 4:
        return f"{statistics.median(values):.3g}"
    low, _, high = statistics.quantiles(values, n=4)
    return f"{statistics.median(values):.3g} [{low:.3g}-{high:.3g}]"


def paired(scoped: list[Sample], whole: list[Sample], what: str) -> list[float]:
    """Round by round, the scoped evaluation's CPU over the whole group's of the same round."""
    return [getattr(a, what) / getattr(b, what) for a, b in zip(scoped, whole, strict=True)]


def place(url: str, *, split: bool) -> None:
    """Every patient in the default facility, or split between `north` and `south`."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        if split:
            for facility in FACILITIES:
                connection.execute(ADD_FACILITY, [facility[field] for field in FACILITY_FIELDS])
            connection.execute(SPLIT_IN_TWO)
        else:
            connection.execute("DELETE FROM patient_facilities")
            connection.execute("DELETE FROM facilities WHERE key IN ('north', 'south')")
            connection.execute(PLACE_ALL_IN_DEFAULT)
        connection.execute("VACUUM ANALYZE patient_facilities")  # as autovacuum leaves it
        # Placing every patient rewrites every patient row's `facility_bits` (triggers of `0018`): a
        # compacted table, as after a bulk import, so that each phase's statements read as many pages.
        connection.execute("VACUUM (FULL, ANALYZE) patients")


def explain(url: str, statement: str, parameters: dict[str, Any], *, parallel: bool) -> str:
    """`EXPLAIN (ANALYZE, BUFFERS)` of a segment statement (as the bench's superuser, which row-level
    security does not apply to: the same as the lifted statement)."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        connection.execute("SET jit = off")  # the settings of `aftercare.segments.evaluate.tune`
        connection.execute("SET work_mem = '64MB'")
        if not parallel:
            connection.execute("SET max_parallel_workers_per_gather = 0")
        rows = connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).fetchall()
    return "\n".join(f"    {line}" for (line,) in rows)


def segments(arguments: argparse.Namespace) -> None:
    """Segment CPU with one facility, with two (whole group), and as scoped callers: one reaching both
    facilities (the same members as the whole group: scoping's own cost) and one reaching `north`."""
    keys = arguments.segments or [segment.key for segment in segment_library()]
    url = arguments.database or create_database(arguments.server)
    try:
        if not arguments.database:
            print(f"generating {arguments.patients:,} patients", flush=True)
            started = time.perf_counter()
            generate(url, arguments.patients)
            print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        place(url, split=False)
        print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
        one, one_samples, _ = asyncio.run(
            evaluate(url, {"group": None}, arguments.rounds, keys, parallel=arguments.parallel)
        )
        place(url, split=True)
        scopes = {"group": None, "both": frozenset({"north", "south"}), "north": frozenset({"north"})}
        two, two_samples, statements = asyncio.run(
            evaluate(url, scopes, arguments.rounds, keys, parallel=arguments.parallel)
        )
        print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
        for key in arguments.explain or []:
            for name in ("group", "both"):
                plan = explain(url, *statements[name][key], parallel=arguments.parallel)
                print(f"\nEXPLAIN {key}, {name}:\n{plan}")
    finally:
        if arguments.keep or arguments.database:
            print(f"database kept: {url}")
        else:
            drop_database(arguments.server, url)
    print(
        f"\nsegments over {arguments.patients:,} patients: server CPU ms of the segment statement, "
        f"median [quartiles] of {arguments.rounds} rounds (the scheduler's count, ns resolution)"
        + (
            "; parallel workers allowed, their CPU not counted"
            if arguments.parallel
            else "; no parallel workers"
        )
    )
    print("group: whole-group caller; both: a caller scoped to north and south (the same members);")
    print("north: a caller scoped to north (half the members). Ratios are paired round by round.")
    header = ("segment", "members", "one facility", "two, group", "two, both", "two, north")
    print("| " + " | ".join(header) + " | both/group | both/group, whole transaction | north/group |")
    print("|" + "---|" * (len(header) + 3))
    for key in two["group"]:
        if not one["group"][key] == two["group"][key] == two["both"][key]:
            raise SystemExit(
                f"{key}: members differ {one['group'][key]}, {two['group'][key]}, {two['both'][key]}"
            )
        cells = [
            spread([sample.query_ns / 1e6 for sample in runs[key]])
            for runs in (
                one_samples["group"],
                two_samples["group"],
                two_samples["both"],
                two_samples["north"],
            )
        ]
        group, both, north = (two_samples[name][key] for name in ("group", "both", "north"))
        ratios = [
            spread(paired(both, group, "query_ns")),
            spread(paired(both, group, "total_ns")),
            spread(paired(north, group, "query_ns")),
        ]
        members_cell = f"{two['group'][key]:,} / {two['north'][key]:,}"
        print(f"| {key} | {members_cell} | " + " | ".join(cells + ratios) + " |")
    print("\nwall ms (loaded machine), medians: group / both / north")
    for key in two["group"]:
        walls = [statistics.median(s.wall for s in two_samples[name][key]) * 1000 for name in scopes]
        print(f"  {key:<28} " + " / ".join(f"{wall:.0f}" for wall in walls))


def main() -> None:
    """Run the parts asked for."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["both", "triggers", "segments"], default="both")
    parser.add_argument("--patients", type=int, default=200_000, help="patients for the segment part")
    parser.add_argument("--rounds", type=int, default=9, help="measured rounds per segment (median)")
    parser.add_argument("--segments", nargs="+", help="segment keys (default: every predefined one)")
    parser.add_argument("--explain", nargs="+", help="print EXPLAIN ANALYZE of these segments' statements")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="let segment statements use parallel workers (whose CPU the bench does not see)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--database", help="a database filled by an earlier --keep run (no generation)")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--patients-per-run", type=int, default=200)
    parser.add_argument("--stack-port", type=int, default=18760)
    parser.add_argument(
        "--trigger-rounds",
        type=int,
        default=2,
        help="rounds of a fresh stack with one and with two facilities",
    )
    arguments = parser.parse_args()
    if arguments.part in ("both", "segments"):
        segments(arguments)
    if arguments.part in ("both", "triggers"):
        asyncio.run(triggers(arguments))


if __name__ == "__main__":
    main()
