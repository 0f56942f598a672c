"""`aftercare mllp`: an asyncio MLLP listener (the `hl7` package's framing) in front of `AdtIntake`.

A sender waits for each acknowledgement before the next message, so one connection is in order by
itself; across connections, messages about one patient (PID-3) take turns, and messages about
different patients are processed concurrently. A message whose processing fails for a transient
reason (the database or Temporal down) gets no acknowledgement: the connection closes and the sender
resends it, which the control id makes safe.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hl7.mllp import InvalidBlockError, start_hl7_server
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.hl7v2.authorities import AuthoritySystems
from aftercare.hl7v2.intake import AdtIntake
from aftercare.hl7v2.messages import V2Message, V2Problem
from aftercare.hl7v2.sealing import RawSealer
from aftercare.security.codec import parse_codec_keys
from aftercare.settings import Settings
from aftercare.temporal.client import connect_temporal
from models.zones import zone_info

log = logging.getLogger(__name__)


class PatientTurns:
    """One lock per patient key while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """Wait for this patient's turn."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def ordering_key(text: str) -> str:
    """The patient a message is about (PID-3's first identifier), or `""` (then it waits for nobody)."""
    try:
        components = V2Message(text).first("PID", 3)
    except V2Problem:
        return ""
    return "|".join(components[:4:3]) if components else ""


def decode(block: bytes) -> str:
    """UTF-8, else Latin-1 (common in v2 feeds without MSH-18)."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("latin-1")


class MllpListener:
    """Accepts MLLP connections and answers each message once it is durable."""

    def __init__(self, intake: AdtIntake) -> None:
        self._intake = intake
        self._turns = PatientTurns()

    async def start(
        self, host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> asyncio.base_events.Server:
        """Listen; the returned server's sockets give the port actually bound."""
        server: asyncio.base_events.Server = await start_hl7_server(self._connection, host, port, ssl=tls)
        return server

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    block = await reader.readblock()  # type: ignore[attr-defined]
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except InvalidBlockError:
                    log.warning("mllp: a block that is not MLLP-framed from %s; closing", peer)
                    return
                text = decode(block)
                async with self._turns.turn(ordering_key(text)):
                    handled = await self._intake.handle(text)
                writer.writeblock(handled.ack.encode())  # type: ignore[attr-defined]
                await writer.drain()
        except Exception:
            log.exception("mllp: a message could not be processed; closing without an ACK so it is resent")
        finally:
            writer.close()


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


@asynccontextmanager
async def adt_intake(settings: Settings) -> AsyncIterator[AdtIntake]:
    """The intake on the configured database and Temporal, for as long as the block runs."""
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
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


async def run_mllp(settings: Settings, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    async with adt_intake(settings) as intake:
        server = await MllpListener(intake).start(host, port, tls=tls)
        bound = server.sockets[0].getsockname()[1]
        print(f"MLLP{' over TLS' if tls else ''} listening on {host}:{bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            await stop.wait()
