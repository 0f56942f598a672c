"""The stack as separate processes, each of which a test (or `bench/burst.py`) can stop, kill and start
again: PostgreSQL (pgserver's PostgreSQL 16 in a directory of its own), the Temporal dev server (the
`temporal` CLI on its own SQLite file), `aftercare api` and `aftercare worker`.

Also the traffic those tests drive: a one-send journey entered by the event `fault.drill`, triggers
with distinct ids, and the counts read back from the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import URL, make_url

from aftercare.db.migrate import create_database_if_missing, libpq_dsn, upgrade
from aftercare.devstack.temporal_server import dev_server_command, start_dev_server
from tests.conftest import AUTH_HEADERS

REPO = Path(__file__).resolve().parents[2]
EVENT = "fault.drill"
JOURNEY = {
    "key": "fault-drill",
    "version": 1,
    "name": "One message per trigger",
    "entry": {"event": {"type": EVENT}},
    "reentry": "always",
    "steps": [{"id": "notify", "send": {"channel": "sms", "body": "Hello {{ patient.given }}."}}],
}


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class Postgres:
    """A PostgreSQL server of the test's own, which it may stop (immediate shutdown: a crash for every
    client) and start again on the same data."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        self._server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
        uri = make_url(self._server.get_uri())
        self.url = URL.create(
            "postgresql+psycopg",
            username=uri.username or "postgres",
            database="aftercare",
            query={"host": uri.query["host"]},
        ).render_as_string(hide_password=False)
        create_database_if_missing(self.url)
        upgrade(self.url)

    def stop(self) -> None:
        """Immediate shutdown: every connection drops, nothing new is accepted."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=self._server.pgdata, user=self._server.system_user)

    def start(self) -> None:
        """Start on the same data and socket."""
        with self._server._lock:
            self._server.ensure_postgres_running()

    def close(self) -> None:
        """Stop for good."""
        with contextlib.suppress(Exception):
            self._server.cleanup()

    def query(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement, on a connection of its own."""
        with psycopg.connect(libpq_dsn(self.url), autocommit=True, connect_timeout=5) as connection:
            return list(connection.execute(statement, params).fetchall())  # type: ignore[call-overload]


class Process:
    """A command run in its own process group, logging to a file; stop (SIGTERM) or kill (SIGKILL)."""

    def __init__(self, command: list[str], log_file: Path, env: dict[str, str] | None = None) -> None:
        self.command = command
        self.log_file = log_file
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the command."""
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO, start_new_session=True
        )

    def kill(self) -> None:
        """SIGKILL the whole process group."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM, wait=20)

    def _signal(self, number: int, wait: float = 10) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Temporal(Process):
    """`temporal server start-dev` on a SQLite file: a restart keeps every workflow."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_port()
        command = dev_server_command(
            db_file=work_dir / "temporal.db",
            host="127.0.0.1",
            port=self.port,
            ui_port=free_port(),
            namespace="default",
        )
        command[command.index("--ui-port") : command.index("--ui-port") + 2] = ["--headless"]
        super().__init__(command, work_dir / "temporal.log")

    def start(self) -> None:
        """Start and wait until it listens."""
        self.process = start_dev_server(self.command, self.log_file)
        wait_for_port(self.port)


@dataclass
class Stack:
    """PostgreSQL, Temporal, the API and a worker, as separate processes, for one test module."""

    work_dir: Path
    pool_size: int = 5
    postgres: Postgres = field(init=False)
    temporal: Temporal = field(init=False)
    api: Process = field(init=False)
    worker: Process = field(init=False)
    api_port: int = field(init=False)
    task_queue: str = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = Postgres(self.work_dir / "pg")
        self.temporal = Temporal(self.work_dir)
        self.api_port = free_port()
        self.task_queue = f"faults-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "DATABASE_URL": self.postgres.url,
            "DATABASE_POOL_SIZE": str(self.pool_size),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal.port}",
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "RATE_LIMIT_PER_SECOND": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        aftercare = str(Path(sys.executable).with_name("aftercare"))
        self.api = Process([aftercare, "api", "--port", str(self.api_port)], self.work_dir / "api.log", env)
        self.worker = Process([aftercare, "worker"], self.work_dir / "worker.log", env)

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def client(self) -> httpx.AsyncClient:
        """A client of the API with the tests' key, with as many connections as a burst opens."""
        return httpx.AsyncClient(
            base_url=self.api_url, headers=AUTH_HEADERS, limits=httpx.Limits(max_connections=400)
        )

    def start(self) -> None:
        """Every part, in dependency order."""
        self.temporal.start()
        self.worker.start()
        self.api.start()
        wait_for_port(self.api_port)

    def close(self) -> None:
        """Every part, in reverse order."""
        for part in (self.api, self.worker, self.temporal):
            with contextlib.suppress(Exception):
                part.stop()
        self.postgres.close()

    def idle_in_transaction(self, older_than_seconds: float = 2.0) -> int:
        """Connections of the API or worker left idle inside a transaction for longer than that."""
        rows = self.postgres.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'aftercare' "
            "AND state LIKE 'idle in transaction%%' AND now() - state_change > make_interval(secs => %s)",
            older_than_seconds,
        )
        return int(rows[0][0])

    def messages_per_trigger(self) -> dict[str, int]:
        """For every enrollment of the drill journey: its trigger id and how many messages it recorded."""
        rows = self.postgres.query(
            "SELECT e.trigger_key, count(m.id) FROM enrollments e LEFT JOIN messages m "
            "ON m.enrollment_id = e.id WHERE e.journey_key = %s GROUP BY e.trigger_key",
            JOURNEY["key"],
        )
        return {str(key).removeprefix("event:"): int(count) for key, count in rows}


@contextlib.contextmanager
def running_stack(work_dir: Path, pool_size: int = 5) -> Iterator[Stack]:
    """A started stack, closed afterwards."""
    stack = Stack(work_dir, pool_size)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@dataclass(frozen=True)
class Answer:
    """One trigger request's fate, as the caller saw it."""

    trigger_id: str
    status: int | None
    seconds: float
    retry_after: str | None
    body: Any
    sent_at: float


async def answer_of(
    request: Callable[[], Awaitable[httpx.Response]], key: str, timeout: float = 10.0
) -> Answer:
    """One request's fate under the caller's whole `timeout` (not httpx's per-phase timeouts); a client
    timeout is an answer with no status, a broken connection one with status 0."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            response = await request()
    except (TimeoutError, httpx.TimeoutException):
        return Answer(key, None, time.monotonic() - started, None, None, started)
    except httpx.TransportError as error:
        return Answer(key, 0, time.monotonic() - started, None, str(error), started)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(
        key,
        response.status_code,
        time.monotonic() - started,
        response.headers.get("retry-after"),
        body,
        started,
    )


async def post_trigger(
    client: httpx.AsyncClient, patient_id: str, trigger_id: str | None = None, timeout: float = 10.0
) -> Answer:
    """One trigger; a client timeout is an answer with no status."""
    trigger_id = trigger_id or uuid.uuid4().hex
    body = {"type": EVENT, "patient_id": patient_id, "id": trigger_id}
    return await answer_of(lambda: client.post("/v1/triggers", json=body, timeout=None), trigger_id, timeout)


async def concurrently(one: Callable[[], Awaitable[Answer]], total: int, concurrency: int) -> list[Answer]:
    """`total` calls of `one`, `concurrency` in flight at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def limited() -> Answer:
        async with limit:
            return await one()

    return list(await asyncio.gather(*(limited() for _ in range(total))))


async def burst(
    client: httpx.AsyncClient, patient_id: str, total: int, concurrency: int, timeout: float = 10.0
) -> list[Answer]:
    """`total` triggers with distinct ids, `concurrency` in flight at a time."""
    return await concurrently(lambda: post_trigger(client, patient_id, timeout=timeout), total, concurrency)


async def steady(
    client: httpx.AsyncClient, patient_id: str, per_second: float, seconds: float, timeout: float = 10.0
) -> list[Answer]:
    """Triggers at a steady rate, each on its own (a slow answer does not hold the next one back)."""
    tasks = []
    for _ in range(int(per_second * seconds)):
        tasks.append(asyncio.create_task(post_trigger(client, patient_id, timeout=timeout)))
        await asyncio.sleep(1 / per_second)
    return list(await asyncio.gather(*tasks))


async def retry_refused(
    client: httpx.AsyncClient, patient_id: str, answers: list[Answer], deadline_seconds: float = 60.0
) -> list[Answer]:
    """What a well-behaved caller does: repeat each refused trigger, same id, after `Retry-After`,
    until it is accepted; returns the final answers."""
    final = {answer.trigger_id: answer for answer in answers}
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        refused = [answer for answer in final.values() if answer.status != 202]
        if not refused:
            break
        await asyncio.sleep(max(float(answer.retry_after or 1) for answer in refused))
        for answer in await asyncio.gather(
            *(post_trigger(client, patient_id, answer.trigger_id) for answer in refused)
        ):
            final[answer.trigger_id] = answer
    return list(final.values())
