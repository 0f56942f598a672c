"""`aftercare mllp`: an asyncio MLLP listener (the `hl7` package's framing) in front of `AdtIntake`.

Group commit: the messages of every connection go into one queue, taken in arrival order a batch at
a time (whatever is waiting when a batch can start), so many messages share a transaction and each
is acknowledged once its batch is durable. Up to two batches run at once, about different patients:
a message whose patient is in a running batch waits for it, so one patient's messages are processed
in the order they arrived, whichever connections brought them. A connection may pipeline (send its
next messages before the ACKs): its ACKs leave in the order of its messages. A message whose
processing fails for a transient reason (the database or Temporal down) gets no acknowledgement: its
connection closes and the sender resends it, which the control id makes safe.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from hl7.mllp import InvalidBlockError, start_hl7_server
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.hl7v2.authorities import AuthoritySystems
from aftercare.hl7v2.failures import error_name
from aftercare.hl7v2.intake import AdtIntake, Handled, patient_key
from aftercare.hl7v2.mapping import event_of
from aftercare.hl7v2.messages import V2Message, V2Problem
from aftercare.hl7v2.processes import other_listeners
from aftercare.hl7v2.sealing import RawSealer
from aftercare.security.codec import parse_codec_keys
from aftercare.settings import Settings
from aftercare.temporal.client import connect_temporal
from models.zones import zone_info

log = logging.getLogger(__name__)
# Messages one connection may have sent and not yet had acknowledged before it is read no further.
PIPELINE_WINDOW = 64
# Messages in one batch at most, and batches running at once: two, so that one batch's Python work
# overlaps the other's wait for PostgreSQL (four ran many batches of eight or so, each paying the
# batch's fixed statements: 2.5 to 3.1 ms of CPU a message in the listener against 2.0 to 2.1).
BATCH_LIMIT = 256
BATCHES_IN_FLIGHT = 2
# With a batch running, another starts only once this many messages can go in it; fewer wait for the
# running batch to end, and go together then (a batch costs two commits, whatever its size).
GATHER = 16
# With none running, a message waits at most this long (seconds) for the other open connections'
# messages to join its batch: senders waiting for each ACK send their next ones together.
GATHER_WAIT = 0.002

Outcome = Handled | Exception


class BatchIntake(Protocol):
    """What the listener hands messages to (`AdtIntake`)."""

    async def handle_batch(self, texts: Sequence[str]) -> list[Outcome]:
        """Each message's acknowledgement, or the error that leaves it unanswered."""
        ...


@dataclass(frozen=True)
class _Queued:
    """A message waiting for a batch: what it must not overtake, and where its answer goes."""

    text: str
    keys: frozenset[str]
    answer: asyncio.Future[Outcome]


def order_keys(text: str) -> frozenset[str]:
    """What a message must keep its place among: its patient (the first PID-3 identifier) and its
    control id; `EVERYTHING` for an A40, which changes who is who. None when it cannot be read (it is
    refused whatever else happens)."""
    try:
        message = V2Message(text)
    except V2Problem:
        return frozenset()
    if event_of(message) == "A40":
        return frozenset({EVERYTHING})
    header = message.header
    patient = patient_key(message)
    return frozenset(
        {f"control:{header.sending_facility}|{header.control_id}"}
        | ({f"patient:{patient}"} if patient else set())
    )


EVERYTHING = "*"


class GroupCommit:
    """One queue for every connection's messages, worked off in batches: whatever is waiting when a
    batch can start joins it (up to `limit`); with none running, a message waits up to `gather_wait`
    for the other open connections' messages (no wait once each has sent one, or with one
    connection). Up to `in_flight` batches run at once when messages pile up (at least `gather` can
    go), so one batch's hand-off to Temporal overlaps the next one's transaction; a message whose
    patient or control id is in a running batch waits for it, and so does every later message about
    that patient, so each patient's messages are processed in their order of arrival. An A40 runs
    with no other batch."""

    def __init__(
        self,
        intake: BatchIntake,
        limit: int = BATCH_LIMIT,
        in_flight: int = BATCHES_IN_FLIGHT,
        gather: int = GATHER,
        gather_wait: float = GATHER_WAIT,
    ) -> None:
        self._intake = intake
        self._gather = gather
        self._gather_wait = gather_wait
        self._timer: asyncio.TimerHandle | None = None
        self.connections = 0  # open connections (the listener counts them): how many may send soon
        self._limit = limit
        self._in_flight = in_flight
        self._waiting: list[_Queued] = []
        self._busy: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, text: str) -> asyncio.Future[Outcome]:
        """Queue a message; the future gives its acknowledgement (or its error) once its batch is done."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Queued(text, order_keys(text), future))
        if not self._running and len(self._waiting) < min(self.connections, self._gather):
            # idle, and other connections may be about to send: a moment for them to join
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._gather_wait, self._dispatch)
            return future
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while len(self._running) < self._in_flight and self._waiting:
            batch, held = self._next_batch()
            if not batch or (self._running and len(batch) < self._gather):
                return  # with a batch running, a few messages wait to go with more: commits are the cost
            self._waiting = held
            keys = frozenset().union(*(queued.keys for queued in batch))
            self._busy |= keys
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(lambda done, keys=keys: self._finished(done, keys))  # type: ignore[misc]

    def _next_batch(self) -> tuple[list[_Queued], list[_Queued]]:
        """The messages that may go now, in order, and the ones that wait."""
        batch: list[_Queued] = []
        held: list[_Queued] = []
        blocked = set(self._busy)
        for queued in self._waiting:
            exclusive = EVERYTHING in queued.keys
            conflict = (
                EVERYTHING in blocked
                or bool(queued.keys & blocked)
                or (exclusive and (bool(self._busy) or bool(batch)))
            )
            if conflict or len(batch) >= self._limit:
                held.append(queued)
                blocked |= queued.keys
            else:
                batch.append(queued)
                if exclusive:
                    blocked.add(EVERYTHING)
        return batch, held

    def _finished(self, task: asyncio.Task[None], keys: frozenset[str]) -> None:
        self._running.discard(task)
        self._busy -= keys
        self._dispatch()

    async def _run(self, batch: list[_Queued]) -> None:
        try:
            outcomes = await self._intake.handle_batch([queued.text for queued in batch])
        except Exception as error:
            outcomes = [error] * len(batch)
        except BaseException:
            for queued in batch:
                queued.answer.cancel()
            raise
        for queued, outcome in zip(batch, outcomes, strict=True):
            if not queued.answer.done():
                queued.answer.set_result(outcome)


def decode(block: bytes) -> str:
    """UTF-8, else Latin-1 (common in v2 feeds without MSH-18)."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("latin-1")


async def _before(awaitable: Awaitable[object], other: asyncio.Task[None]) -> bool:
    """Wait for `awaitable` unless `other` ends first (then False)."""
    waiting = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({waiting, other}, return_when=asyncio.FIRST_COMPLETED)
    if waiting in done:
        return True
    waiting.cancel()
    return False


class MllpListener:
    """Accepts MLLP connections and answers each message once it is durable."""

    def __init__(self, intake: BatchIntake, *, gather_wait: float = GATHER_WAIT) -> None:
        self._batches = GroupCommit(intake, gather_wait=gather_wait)

    async def start(
        self, host: str, port: int, *, tls: ssl.SSLContext | None = None, reuse_port: bool = False
    ) -> asyncio.base_events.Server:
        """Listen (with `reuse_port`, beside other processes on the same port: SO_REUSEPORT); the
        returned server's sockets give the port actually bound."""
        server: asyncio.base_events.Server = await start_hl7_server(
            self._connection, host, port, ssl=tls, reuse_port=reuse_port or None
        )
        return server

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read messages as they come (up to `PIPELINE_WINDOW` unanswered); answer them in order."""
        answers: asyncio.Queue[asyncio.Future[Outcome] | None] = asyncio.Queue()
        window = asyncio.Semaphore(PIPELINE_WINDOW)
        replier = asyncio.create_task(self._reply(answers, window, writer))
        self._batches.connections += 1
        try:
            while not replier.done():
                try:
                    block = await reader.readblock()  # type: ignore[attr-defined]
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except InvalidBlockError:
                    log.warning("mllp: a block that is not MLLP-framed from %s; closing", peer_of(writer))
                    return
                if window.locked():
                    if not await _before(window.acquire(), replier):
                        return
                else:
                    await window.acquire()
                answers.put_nowait(self._batches.submit(decode(block)))
        finally:
            self._batches.connections -= 1
            answers.put_nowait(None)
            try:
                await replier
            finally:
                writer.close()

    async def _reply(
        self,
        answers: asyncio.Queue[asyncio.Future[Outcome] | None],
        window: asyncio.Semaphore,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Each message's ACK in turn; on a failure, close without it (the sender resends)."""
        try:
            while (answer := await answers.get()) is not None:
                outcome = await answer
                if isinstance(outcome, Exception):
                    log.error(
                        "mllp: a message could not be processed (%s); closing without an ACK so it is resent",
                        error_name(outcome),
                    )
                    writer.close()
                    return
                writer.writeblock(outcome.ack.encode())  # type: ignore[attr-defined]
                await writer.drain()
                window.release()
        except ConnectionError:
            writer.close()


def peer_of(writer: asyncio.StreamWriter) -> object:
    """The address at the other end, for the log."""
    return writer.get_extra_info("peername")


def intake_for(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    starter: EnrollmentStarter | None = None,
) -> AdtIntake:
    """The intake of these settings on an engine's sessions and a Temporal client (the listener's, or
    the API's for an operator's retry)."""
    keys = (
        parse_codec_keys(settings.aftercare_codec_keys.get_secret_value())
        if settings.aftercare_codec_keys is not None
        else []
    )
    return AdtIntake(
        sessions=sessions,
        starter=starter or EnrollmentStarter(sessions, temporal, settings.temporal_task_queue),
        temporal=temporal,
        sealer=RawSealer(keys),
        zone=zone_info(settings.hospital_timezone),
        phone_region=settings.phone_default_region,
        identity_rules=settings.identity_rules,
        authorities=AuthoritySystems(settings.hl7v2_authority_systems),
        write_back_queue=settings.write_back_queue,
    )


def listener_engine(settings: Settings) -> AsyncEngine:
    """The listener's engine. Its statements take a batch's values as arrays of 1 to `BATCH_LIMIT`
    elements, so each run is planned for its own arrays (`custom_plans`). A generic plan, made while
    the tables were small (a new installation, or a backlog after go-live), went on scanning them whole
    as they grew."""
    return create_engine(settings.database_url, pool_size=settings.database_pool_size, custom_plans=True)


@asynccontextmanager
async def adt_intake(settings: Settings) -> AsyncIterator[AdtIntake]:
    """The intake on the configured database and Temporal, for as long as the block runs."""
    engine = listener_engine(settings)
    try:
        temporal = await connect_temporal(settings)
        yield intake_for(settings, session_factory(engine), temporal)
    finally:
        await engine.dispose()


def tls_context(certificate: str, key: str) -> ssl.SSLContext:
    """A server context for MLLP over TLS (TLS 1.2 or newer) from PEM files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    return context


async def run_mllp(
    settings: Settings,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    processes: int = 1,
    share_port: bool = False,
    tls_arguments: Sequence[str] = (),
) -> int:
    """Serve until SIGINT or SIGTERM; the exit status. With `processes` above one, this process starts
    the others on the port it bound (`other_listeners`, with `tls_arguments` to pass on); with
    `share_port` it is one of those others."""
    async with adt_intake(settings) as alone:
        shared = share_port or processes > 1
        intake = replace(alone, shares_port=shared)
        server = await MllpListener(intake).start(host, port, tls=tls, reuse_port=shared)
        bound = server.sockets[0].getsockname()[1]
        print(f"MLLP{' over TLS' if tls else ''} listening on {host}:{bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        arguments = ["--host", host, "--port", str(bound), *tls_arguments]
        async with server, other_listeners(processes - 1, arguments) as ended:
            stopped: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
            waiting: set[asyncio.Future[object]] = {stopped, ended}  # type: ignore[arg-type]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if ended.done() and not ended.cancelled():
                log.error("mllp: a listener process ended (status %s); stopping the others", ended.result())
                return 1
    return 0
