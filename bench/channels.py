"""Channels: messages per second through each provider path, against this machine's stand-ins for the
providers, with the rate limiter off and on.

    python bench/channels.py                      # 200 messages per path, 16 at a time; limiter at 20/s
    python bench/channels.py --messages 500 --concurrency 32 --rate 50

Part 1 sends through the send activity itself (compose, record the intent, call the provider, record
the outcome), `--concurrency` at a time, for each path: the outbox; Twilio and SendGrid (the real SDKs
against Prism serving each provider's OpenAPI spec); an SMTP relay (aiosmtpd); a Web Push service
(local HTTP server, two devices per patient); postal letters (PDF rendering into the print batch).

Part 2 runs whole journeys on a Temporal dev server with two workers, SMS through Twilio-on-Prism:
once without a limit and once with `TWILIO_MAX_PER_SECOND=--rate`; it prints the rate held and the
most texts sent in any one second. Needs PostgreSQL (127.0.0.1:5432, else embedded) and Prism
(`make test` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.messaging.letters import LetterProvider
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import MessageProvider, ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.sendgrid_email import SendGridEmailProvider
from activities.messaging.smtp_email import SmtpEmailProvider
from activities.messaging.twilio_sms import TwilioSmsProvider
from activities.messaging.web_push import WebPushProvider
from activities.registry import build_activities
from aftercare.db.engine import create_engine, session_factory
from aftercare.devstack.postgres import embedded_database
from aftercare.devstack.temporal_server import dev_server_tuning_args, temporal_cli
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.push_keys import generate_vapid_keys
from aftercare.security.codec import new_codec_key
from aftercare.settings import Settings
from aftercare.store.push_subscriptions import save_subscription
from aftercare.store.resources import store_resources
from aftercare.temporal.client import data_converter
from bench.stack import quiet_sdk_core
from models.journey import SendSpec
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from models.tables import Message
from tests.conftest import OPENAPI_SPECS, create_test_database, drop_test_database
from tests.helpers import TWILIO_ACCOUNT_SID, busiest_second, send_request
from tests.local_services import Browser, running_push_service, running_smtp_relay
from tests.prism import prism_mock

PATIENT_ID = "bench-channels-patient"
PATIENT = {
    "resourceType": "Patient",
    "id": PATIENT_ID,
    "name": [{"given": ["Bench"], "family": "Channels"}],
    "telecom": [
        {"system": "phone", "value": "617-555-0100", "use": "mobile"},
        {"system": "email", "value": "bench.channels@example.org"},
    ],
    "address": [{"line": ["1 Main St"], "city": "Boston", "state": "MA", "postalCode": "02110"}],
}
SPECS = {
    "sms": SendSpec(channel="sms", body="Hi {{ patient.given }}, how are you feeling today?"),
    "email": SendSpec(channel="email", subject="Your follow-up", body="Dear {{ patient.given }}, ..."),
    "push": SendSpec(channel="push", subject="Check-in", body="How are you feeling today?"),
    "letter": SendSpec(channel="letter", subject="Your follow-up", body="Dear {{ patient.given }},\n\n" * 8),
}


async def send_many(
    sessions: async_sessionmaker[AsyncSession],
    channel: str,
    provider: MessageProvider,
    count: int,
    concurrency: int,
) -> dict[str, float]:
    """`count` sends through the send activity, `concurrency` at a time: rate and latency."""
    activities = MessagingActivities(sessions, ProviderRegistry({channel: provider}, OutboxProvider()))
    run = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def one(number: int) -> None:
        async with gate:
            began = time.perf_counter()
            request = send_request(
                SPECS[channel], step=channel, enrollment_id=f"{run}-{number}", patient_id=PATIENT_ID
            )
            result = await ActivityEnvironment().run(activities.send_message, request)
            latencies.append(time.perf_counter() - began)
            statuses[result.status] = statuses.get(result.status, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(one(number) for number in range(count)))
    elapsed = time.perf_counter() - began
    accepted = sum(n for status, n in statuses.items() if status in ("queued", "sent"))
    if accepted != count:
        raise SystemExit(f"{provider.name}: only {accepted} of {count} accepted: {statuses}")
    latencies.sort()
    return {
        "per_second": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
    }


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A new database on the machine's PostgreSQL (127.0.0.1:5432), else on an embedded one."""
    with contextlib.ExitStack() as stack:
        server = "postgresql://postgres@127.0.0.1:5432/postgres"
        try:
            with psycopg.connect(server, connect_timeout=3):
                pass
        except psycopg.OperationalError:
            embedded = embedded_database(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            stack.callback(embedded.stop)
            server = embedded.url
        url = create_test_database(server)
        stack.callback(drop_test_database, server, url)
        yield url


async def part_one(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace
) -> None:
    async with sessions.begin() as session:
        await store_resources(session, [PATIENT], source="bench", phone_region="US", fire_triggers=False)
    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aftercare-bench-")))
        twilio_url = stack.enter_context(
            prism_mock(OPENAPI_SPECS / "twilio_api_v2010.json", logs / "twilio.log")
        )
        sendgrid_url = stack.enter_context(
            prism_mock(OPENAPI_SPECS / "tsg_mail_v3.json", logs / "sendgrid.log")
        )
        relay = stack.enter_context(running_smtp_relay())
        push = stack.enter_context(running_push_service())
        async with sessions.begin() as session:
            for device in ("phone", "laptop"):
                browser = Browser()
                await save_subscription(
                    session, PATIENT_ID, push.endpoint(device), browser.p256dh, browser.auth, device
                )
        paths: list[tuple[str, str, MessageProvider]] = [
            ("outbox (no provider)", "sms", OutboxProvider()),
            (
                "Twilio SMS -> Prism",
                "sms",
                TwilioSmsProvider(TWILIO_ACCOUNT_SID, "token", "+15005550006", base_url=twilio_url),
            ),
            (
                "SendGrid email -> Prism",
                "email",
                SendGridEmailProvider(sessions, "SG.key", "care@hospital.example", base_url=sendgrid_url),
            ),
            (
                "SMTP email -> aiosmtpd",
                "email",
                SmtpEmailProvider("127.0.0.1", relay.port, "care@hospital.example", starttls=False),
            ),
            (
                "Web Push, 2 devices -> local push service",
                "push",
                WebPushProvider(sessions, generate_vapid_keys().private_key, "mailto:bench@hospital.example"),
            ),
            ("letters (PDF into the print batch)", "letter", LetterProvider(sessions, settings)),
        ]
        print(
            f"Part 1: {args.messages} sends per path, {args.concurrency} at a time, through the send activity"
        )
        print(f"  {'path':44} {'msgs/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for label, channel, provider in paths:
            figures = await send_many(sessions, channel, provider, args.messages, args.concurrency)
            print(
                f"  {label:44} {figures['per_second']:8.1f} {figures['p50_ms']:8.1f} {figures['p95_ms']:8.1f}"
            )


@contextlib.asynccontextmanager
async def workers(
    env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    from worker import build_workers

    second = await Client.connect(
        env.client.service_client.config.target_host, data_converter=data_converter(settings)
    )
    async with contextlib.AsyncExitStack() as stack:
        for client in (env.client, second):
            for running in build_workers(client, settings, build_activities(sessions, settings, client)):
                await stack.enter_async_context(running)
        yield


async def campaign(
    env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession], count: int
) -> dict[str, float]:
    """Enroll `count` patients in a one-text journey; the rate Twilio was called at."""
    from aftercare.definitions import parse_journey
    from aftercare.store.journeys import get_journey, publish_journey

    key = f"bench-campaign-{uuid.uuid4().hex[:6]}"
    journey = parse_journey(
        {
            "key": key,
            "version": 1,
            "name": "Benchmark campaign",
            "steps": [{"id": "invite", "send": SPECS["sms"].model_dump(exclude_none=True)}],
        }
    )
    patient_ids = [f"{key}-{n}" for n in range(count)]
    patients = [{**PATIENT, "id": patient_id} for patient_id in patient_ids]
    async with sessions.begin() as session:
        await store_resources(session, patients, source="bench", phone_region="US", fire_triggers=False)
        await publish_journey(session, journey)
        published = await get_journey(session, key)
    assert published is not None
    starter = EnrollmentStarter(sessions, env.client, settings.temporal_task_queue)
    async with workers(env, settings, sessions):
        began = time.perf_counter()
        await starter.enroll_many(published, [(patient_id, {}) for patient_id in patient_ids])
        while True:
            async with sessions() as session:
                rows = await session.execute(
                    select(Message.attempted_at, Message.sent_at).where(Message.journey_key == key)
                )
                sent = [attempted or accepted for attempted, accepted in rows if accepted is not None]
            if len(sent) == count:
                break
            if time.perf_counter() - began > 600:
                raise SystemExit(f"only {len(sent)} of {count} texts went out in 10 minutes")
            await asyncio.sleep(0.2)
    stamps = sorted(sent)
    return {
        "per_second": (count - 1) / (stamps[-1] - stamps[0]).total_seconds(),
        "busiest_second": busiest_second(stamps),
    }


async def part_two(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace
) -> None:
    with tempfile.TemporaryDirectory(prefix="aftercare-bench-") as logs:
        twilio_url = prism_mock(OPENAPI_SPECS / "twilio_api_v2010.json", Path(logs) / "twilio.log")
        with twilio_url as base:
            env = await WorkflowEnvironment.start_local(
                data_converter=data_converter(settings),
                dev_server_existing_path=temporal_cli(),
                search_attributes=ALL_SEARCH_ATTRIBUTES,
                dev_server_extra_args=dev_server_tuning_args(),
            )
            try:
                twilio: dict[str, Any] = {
                    "twilio_account_sid": TWILIO_ACCOUNT_SID,
                    "twilio_auth_token": SecretStr("token"),
                    "twilio_from_number": "+15005550006",
                    "twilio_base_url": base,
                }
                print(f"Part 2: {args.campaign} one-text enrollments, two workers, Twilio on Prism")
                print(f"  {'limiter':28} {'texts/s':>8} {'most in 1 s':>12}")
                for label, limit in (("off", 0.0), (f"on, {args.rate:g}/s", args.rate)):
                    run_settings = settings.model_copy(
                        update={
                            **twilio,
                            "twilio_max_per_second": limit,
                            "temporal_task_queue": f"bench-{uuid.uuid4().hex[:6]}",
                        }
                    )
                    figures = await campaign(env, run_settings, sessions, args.campaign)
                    print(f"  {label:28} {figures['per_second']:8.1f} {figures['busiest_second']:12.0f}")
            finally:
                await env.shutdown()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200, help="sends per provider path (part 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight at once (part 1)")
    parser.add_argument("--campaign", type=int, default=200, help="enrollments per campaign (part 2)")
    parser.add_argument("--rate", type=float, default=20.0, help="TWILIO_MAX_PER_SECOND with the limiter on")
    args = parser.parse_args()
    quiet_sdk_core()
    with database() as url:
        settings = Settings(
            database_url=url,
            hospital_timezone="America/New_York",
            aftercare_env="development",
            aftercare_codec_keys=SecretStr(new_codec_key("bench")),  # payloads encrypted, as in production
            _env_file=None,
        )
        engine = create_engine(url, pool_size=max(10, args.concurrency))
        sessions = session_factory(engine)
        try:
            await part_one(settings, sessions, args)
            await part_two(settings, sessions, args)
        finally:
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
