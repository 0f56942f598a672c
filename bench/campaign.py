"""Campaigns at scale: a 100,000-patient campaign to the outbox, and one to SendGrid (the real SDK
against Prism serving SendGrid's Mail Send v3 spec), end to end through Temporal.

    python bench/campaign.py                              # 100,000 patients, outbox then SendGrid
    python bench/campaign.py --patients 20000 --sendgrid-patients 5000 --parallel 2

It creates a fresh database, generates the patients in SQL (names, phones, emails, four time zones;
one in 50 has withdrawn consent for the campaign's purpose, one in 100 has no phone), publishes a
segment of adults, templates and campaigns, and runs each campaign on a Temporal dev server with one
worker (the production worker, in this process). It prints, per campaign: the audience, how long
the freeze took, the end-to-end time from launch to the run's completion, messages recorded per
second, and the recipients by outcome. Needs PostgreSQL (127.0.0.1:5432, else embedded) and Prism
(`make test` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.registry import build_activities
from aftercare.campaigns.launch import CampaignLauncher
from aftercare.campaigns.validation import check_campaign, parse_campaign
from aftercare.db.engine import create_engine, session_factory
from aftercare.devstack.temporal_server import dev_server_tuning_args, temporal_cli
from aftercare.settings import Settings
from aftercare.store.campaigns import get_run, publish_campaign
from aftercare.store.segments import publish_segment
from aftercare.store.templates import publish_template
from aftercare.temporal.client import data_converter
from bench.channels import database
from bench.stack import quiet_sdk_core
from models.campaign_runs import CampaignRunResult
from models.campaign_tables import CampaignRecipient
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from models.segment import SegmentDefinition
from models.template import TemplateDefinition
from tests.conftest import OPENAPI_SPECS
from tests.prism import prism_mock

TARGET_SECONDS = 120.0
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
# Every statement sees :n (how many), :prefix (of the ids) and :language (which tells the two
# populations apart: the outbox campaign's segment is the English and Spanish speakers, SendGrid's the
# Portuguese speakers).
GENERATE = [
    """
    INSERT INTO patients (id, version_id, name, given, family, birth_date, gender, phone, phone_status,
                          email, language, timezone)
    SELECT :prefix || n, '1', 'Pat' || n || ' Bench', 'Pat' || n, 'Bench',
           date '1940-01-01' + (n * 7919 % 20000), CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END,
           CASE WHEN n % 100 = 0 THEN NULL ELSE '+1555' || lpad((n % 10000000)::text, 7, '0') END,
           CASE WHEN n % 100 = 0 THEN 'missing' ELSE 'valid' END,
           'pat' || n || '@' || :prefix || '.example.org',
           CASE WHEN :language <> 'en-US' THEN :language WHEN n % 7 = 0 THEN 'es' ELSE 'en-US' END,
           (ARRAY['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles'])[n % 4 + 1]
    FROM generate_series(1, :n) AS n
    """,
    """
    INSERT INTO consent_events (patient_id, channel, purpose, status, source)
    SELECT :prefix || n, '*', 'health_education', 'revoked', 'bench'
    FROM generate_series(1, :n) AS n WHERE n % 50 = 7
    """,
]
OUTBOX_SEGMENT = SegmentDefinition.model_validate(
    {
        "key": "bench-adults",
        "name": "Adults who speak English or Spanish",
        "criteria": {"all": [{"age": {"gte": 18}}, {"language": {"in": ["en", "es"]}}]},
    }
)
EMAIL_SEGMENT = SegmentDefinition.model_validate(
    {"key": "bench-portuguese", "name": "Portuguese speakers", "criteria": {"language": {"eq": "pt"}}}
)
TEMPLATES = [
    {
        "key": "bench-flu-sms",
        "channel": "sms",
        "body": "Hi {{ patient.given }}, flu shots are in. Reply STOP to opt out.",
    },
    {
        "key": "bench-flu-sms",
        "channel": "sms",
        "locale": "es",
        "body": "Hola {{ patient.given }}, ya tenemos la vacuna de la gripe. Responda STOP para salir.",
    },
    {
        "key": "bench-flu-email",
        "channel": "email",
        "subject": "Your flu shot, {{ patient.given }}",
        "body": "Flu shots are in at Springfield General. Book at https://hospital.example/flu",
        "html": "<p>Flu shots are in, <b>{{ patient.given }}</b>. <a href='https://hospital.example/flu'>Book</a></p>",
    },
]


async def generate(sessions: async_sessionmaker[AsyncSession], outbox: int, email: int) -> float:
    began = time.perf_counter()
    async with sessions.begin() as session:
        for prefix, language, count in (("b", "en-US", outbox), ("e", "pt", email)):
            for statement in GENERATE:
                await session.execute(text(statement), {"n": count, "prefix": prefix, "language": language})
        await session.execute(text("ANALYZE patients"))
        await session.execute(text("ANALYZE consent_events"))
        await publish_segment(session, OUTBOX_SEGMENT)
        await publish_segment(session, EMAIL_SEGMENT)
        for template in TEMPLATES:
            await publish_template(session, TemplateDefinition.model_validate(template))
    return time.perf_counter() - began


@contextlib.asynccontextmanager
async def worker(
    env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    from worker import build_workers, use_provider_threads

    use_provider_threads(settings)
    async with contextlib.AsyncExitStack() as stack:
        for running in build_workers(env.client, settings, build_activities(sessions, settings, env.client)):
            await stack.enter_async_context(running)
        yield


async def run_campaign(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    document: dict[str, Any],
) -> dict[str, Any]:
    campaign = parse_campaign(document)
    async with sessions.begin() as session:
        await check_campaign(session, campaign)
        await publish_campaign(session, campaign)
    launcher = CampaignLauncher(
        sessions,
        env.client,
        settings.temporal_task_queue,
        parallel_batches=settings.campaign_parallel_batches,
    )
    async with worker(env, settings, sessions):
        began = time.perf_counter()
        launched = await launcher.launch(campaign)
        handle = env.client.get_workflow_handle(f"campaign-{launched.run_id}", result_type=CampaignRunResult)
        result = await handle.result()
        elapsed = time.perf_counter() - began
    async with sessions() as session:
        run = await get_run(session, str(launched.run_id))
        rows = await session.execute(
            select(CampaignRecipient.state, func.count())
            .where(CampaignRecipient.run_id == launched.run_id)
            .group_by(CampaignRecipient.state)
        )
        states = {state: count for state, count in rows}
    assert run is not None
    assert run.frozen_at is not None
    return {
        "audience": result.audience,
        "messaged": result.messaged,
        "elapsed": elapsed,
        "freeze": (run.frozen_at - run.created_at).total_seconds(),
        "states": states,
    }


def report(label: str, figures: dict[str, Any]) -> None:
    audience, elapsed = figures["audience"], figures["elapsed"]
    states = ", ".join(f"{state} {count}" for state, count in sorted(figures["states"].items()))
    rate = audience / elapsed
    print(
        f"  {label:26} {audience:>8} {figures['freeze']:>9.1f} s {elapsed:>9.1f} s {rate:>10.0f}   {states}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--sendgrid-patients", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="recipients per batch activity")
    parser.add_argument("--parallel", type=int, default=2, help="batch activities a run sends at once")
    parser.add_argument("--concurrency", type=int, default=32, help="SendGrid calls in flight per batch")
    args = parser.parse_args()
    quiet_sdk_core()
    with database() as url:
        engine = create_engine(url, pool_size=20)
        sessions = session_factory(engine)
        generated = await generate(sessions, args.patients, args.sendgrid_patients)
        print(f"generated {args.patients + args.sendgrid_patients} patients in {generated:.1f} s")
        env = await WorkflowEnvironment.start_local(
            data_converter=data_converter(Settings(_env_file=None)),
            dev_server_existing_path=temporal_cli(),
            search_attributes=ALL_SEARCH_ATTRIBUTES,
            dev_server_extra_args=dev_server_tuning_args(),
        )
        base = Settings(
            database_url=url,
            hospital_timezone="America/New_York",
            quiet_hours_start="",
            campaign_parallel_batches=args.parallel,
            campaign_delivery_concurrency=args.concurrency,
            _env_file=None,
        )
        heading = f"  {'campaign':26} {'audience':>8} {'freeze':>11} {'end to end':>11} {'per second':>10}"
        print(heading + "   recipients")
        try:
            outbox = base.model_copy(update={"temporal_task_queue": f"bench-{uuid.uuid4().hex[:6]}"})
            document = {
                "key": "bench-outbox",
                "name": "Flu by SMS (outbox)",
                "segment": OUTBOX_SEGMENT.key,
                "template": "bench-flu-sms",
                "batch_size": args.batch,
            }
            figures = await run_campaign(env, outbox, sessions, document)
            report("SMS to the outbox", figures)
            verdict = "meets" if figures["elapsed"] < TARGET_SECONDS else "misses"
            print(
                f"  (target: {figures['audience']} to the outbox in under {TARGET_SECONDS:.0f} s: {verdict})"
            )
            if args.sendgrid_patients:
                with (
                    tempfile.TemporaryDirectory(prefix="aftercare-bench-") as logs,
                    prism_mock(OPENAPI_SPECS / "tsg_mail_v3.json", Path(logs) / "sendgrid.log") as host,
                ):
                    sendgrid = base.model_copy(
                        update={
                            "temporal_task_queue": f"bench-{uuid.uuid4().hex[:6]}",
                            "sendgrid_api_key": SecretStr("SG.bench"),
                            "sendgrid_from_email": "care@hospital.example",
                            "sendgrid_base_url": host,
                        }
                    )
                    document = {
                        "key": "bench-sendgrid",
                        "name": "Flu by email (SendGrid on Prism)",
                        "segment": EMAIL_SEGMENT.key,
                        "template": "bench-flu-email",
                        "batch_size": args.batch,
                    }
                    figures = await run_campaign(env, sendgrid, sessions, document)
                    report("email to SendGrid (Prism)", figures)
        finally:
            await env.shutdown()
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
