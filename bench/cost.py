"""What a trigger or a request costs, in figures the machine's load does not distort: CPU time per
process (API, worker, Temporal server, PostgreSQL, or the bench's own process and the database's
backends) and the workflow history a journey writes (events, workflow tasks, activities, local
activities).

CPU time is read from each process (psutil). A stack's PostgreSQL is its postmaster, every backend, and
the CPU of backends that already exited (the postmaster's reaped children); on a shared server, the
backends serving one database (`database_backends`) are metered instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import psutil

from bench.stack import Stack

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def _cpu(process: psutil.Process, *, reaped: bool = False) -> float:
    """User + system CPU seconds of `process` (and of its waited-for children when `reaped`)."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    total = float(times.user + times.system)
    if reaped:
        total += times.children_user + times.children_system
    return total


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process `pid` has used (clock ticks, 10 ms); None when it is gone
    or not on this machine."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def on_cpu_ns(pid: int) -> int | None:
    """Nanoseconds the process (or thread) `pid` has run on a CPU, the scheduler's own count
    (`/proc/<pid>/schedstat`): no clock-tick resolution, unlike user + system time; None when it is
    not on this machine."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuSource(Protocol):
    """Something a `CpuMeter` reads: a name and the CPU seconds used so far."""

    name: str

    def cpu_seconds(self) -> float: ...


@dataclass
class ProcessGroup:
    """A named set of processes whose CPU time is summed (a PostgreSQL server: its postmaster and
    backends; the others: one process)."""

    name: str
    root: psutil.Process
    with_children: bool = False

    def cpu_seconds(self) -> float:
        if not self.with_children:
            return _cpu(self.root)
        total = _cpu(self.root, reaped=True)
        try:
            children = self.root.children(recursive=True)
        except psutil.Error:
            children = []
        return total + sum(_cpu(child) for child in children)


def this_process(name: str = "bench") -> ProcessGroup:
    """The process running the bench (an app served in-process through ASGI)."""
    return ProcessGroup(name, psutil.Process())


@dataclass
class TrackedProcesses:
    """Processes by id that come and go, such as the backends serving one database on a shared server.
    `track` adds the ones seen now; one that appears after the meter started counts from zero, one that
    exits keeps the CPU it was last seen with (never a negative figure)."""

    name: str
    _seen: dict[int, float] = field(default_factory=dict)

    def track(self, pids: Iterable[int]) -> None:
        for pid in pids:
            self._seen.setdefault(pid, 0.0)

    def cpu_seconds(self) -> float:
        for pid in self._seen:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue  # gone: keep the last reading
            self._seen[pid] = float(times.user + times.system)
        return sum(self._seen.values())


async def database_backends(engine: AsyncEngine) -> set[int]:
    """The PostgreSQL server processes serving connections to the engine's database (local servers)."""
    from sqlalchemy import text

    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return {int(pid) for (pid,) in rows}


@dataclass
class CpuMeter:
    """CPU seconds per source (process group) between two snapshots."""

    groups: Sequence[CpuSource]
    _start: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._start = self.snapshot()

    def snapshot(self) -> dict[str, float]:
        return {group.name: group.cpu_seconds() for group in self.groups}

    def since_start(self) -> dict[str, float]:
        now = self.snapshot()
        return {name: now[name] - self._start.get(name, 0.0) for name in now}


def stack_processes(stack: Stack) -> list[ProcessGroup]:
    """The API, worker and Temporal server under the stack's supervisor, and its PostgreSQL server."""
    supervisor = psutil.Process(stack.process.pid)
    groups: list[ProcessGroup] = []
    for child in supervisor.children():
        command = " ".join(child.cmdline())
        if "aftercare worker" in command:
            groups.append(ProcessGroup("worker", child))
        elif "aftercare api" in command:
            groups.append(ProcessGroup("api", child))
        elif "start-dev" in command:
            groups.append(ProcessGroup("temporal", child))
    postmaster = find_postmaster(stack.data_dir / "pg")
    if postmaster is not None:
        groups.append(ProcessGroup("postgres", postmaster, with_children=True))
    return groups


def find_postmaster(pg_data: Path) -> psutil.Process | None:
    """The PostgreSQL server whose data directory is `pg_data` (the embedded server runs detached)."""
    wanted = str(pg_data)
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if command and Path(command[0]).name == "postgres" and wanted in " ".join(command):
            return process
    return None


def pg_transactions(pg_data: Path) -> int | None:
    """Transactions committed and rolled back so far in the stack's database (its statistics are flushed
    about once a second, so take this a little after the load)."""
    import psycopg

    try:
        with psycopg.connect(host=str(pg_data), dbname="aftercare", user="postgres") as connection:
            row = connection.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None


def print_cpu(
    spent: dict[str, float],
    operations: int,
    label: str = "trigger",
    *,
    idle: dict[str, float] | None = None,
    seconds: float = 0.0,
) -> None:
    """CPU ms per operation per process, and the application's share (API, worker, PostgreSQL). With
    `idle` (CPU seconds per second while nothing ran) the idle CPU of `seconds` is also shown taken off:
    pollers and the Temporal server's timers cost the same whatever the rate."""
    if operations <= 0:
        return
    idle = idle or {}
    net = {name: max(0.0, value - idle.get(name, 0.0) * seconds) for name, value in spent.items()}
    print(f"CPU per {label} (process CPU time over {operations} {label}s, {seconds:.0f} s)")
    print(f"  {'':20s} {'total':>9s} {'above idle':>11s} {'idle (ms/s)':>12s}")
    for name in ("api", "worker", "postgres", "temporal"):
        if name in spent:
            total, above = spent[name] * 1000 / operations, net[name] * 1000 / operations
            print(f"  {name:20s} {total:7.2f} ms {above:8.2f} ms {idle.get(name, 0.0) * 1000:9.1f}")
    for title, names in (("api+worker+postgres", ("api", "worker", "postgres")), ("all four", tuple(spent))):
        total = sum(spent.get(name, 0.0) for name in names) * 1000 / operations
        above = sum(net.get(name, 0.0) for name in names) * 1000 / operations
        print(f"  {title:20s} {total:7.2f} ms {above:8.2f} ms")


@dataclass
class HistoryShape:
    """Event counts of one workflow history."""

    events: int
    workflow_tasks: int
    activities: int
    local_activities: int
    kinds: Counter[str]


async def history_shapes(
    temporal_address: str, namespace: str, workflow_ids: Iterable[str]
) -> list[HistoryShape]:
    """Fetch each workflow's history and count its events by kind (the payloads stay encoded)."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    client = await Client.connect(temporal_address, namespace=namespace)
    shapes = []
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        kinds: Counter[str] = Counter(EventType.Name(event.event_type) for event in history.events)
        local = sum(
            1
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        )
        shapes.append(
            HistoryShape(
                events=len(history.events),
                workflow_tasks=kinds["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"],
                activities=kinds["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"],
                local_activities=local,
                kinds=kinds,
            )
        )
    return shapes


def print_history(shapes: list[HistoryShape]) -> None:
    """Mean events, workflow tasks, activities and local activities per sampled workflow."""
    if not shapes:
        return
    count = len(shapes)

    def mean(values: Iterable[int]) -> float:
        return sum(values) / count

    print(
        f"history per trigger (mean of {count} workflows): "
        f"{mean(s.events for s in shapes):.1f} events, "
        f"{mean(s.workflow_tasks for s in shapes):.2f} workflow tasks, "
        f"{mean(s.activities for s in shapes):.2f} activities, "
        f"{mean(s.local_activities for s in shapes):.2f} local activities"
    )
    kinds: Counter[str] = Counter()
    for shape in shapes:
        kinds.update(shape.kinds)
    print(
        "  events: "
        + ", ".join(
            f"{kind.removeprefix('EVENT_TYPE_').lower()} {number / count:.2f}"
            for kind, number in kinds.most_common()
        )
    )
