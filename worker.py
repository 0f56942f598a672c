"""The Aftercare worker: `python worker.py` or `aftercare worker`.

It connects to TEMPORAL_ADDRESS and DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client import start_http_server
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import journeys.code  # noqa: F401 (the code journeys register with the enrollment workflow)
import workflows
from activities.registry import build_activities, delivery_queue, provider_rate_limits
from aftercare.analytics.fold import fold_forever
from aftercare.availability import TEMPORAL, unavailable_part
from aftercare.db.engine import create_engine, session_factory
from aftercare.fhir_sync.sources import source_plans
from aftercare.logs import configure_logging
from aftercare.long_lived import freeze_startup_objects
from aftercare.security.startup import StartupRefused, configuration_problems, refuse_if
from aftercare.settings import Settings, get_settings
from aftercare.temporal.client import connect_temporal, ensure_search_attributes
from aftercare.temporal.schedules import ensure_poll_schedule, ensure_schedules
from journeys.sync import sync_code_journeys
from workflows import WORKFLOWS

log = logging.getLogger("aftercare.worker")


def precompile_workflow_modules() -> None:
    """Write bytecode for the workflow modules.

    The sandbox imports workflow modules afresh for every workflow run. Where PYTHONDONTWRITEBYTECODE
    is set (containers, CI), nothing would cache their bytecode and every run would compile them again.
    """
    compileall.compile_dir(Path(workflows.__file__).parent, quiet=1)


def workflow_runner(sandboxed: bool) -> WorkflowRunner:
    """With `sandboxed` (WORKFLOW_SANDBOX), the sandbox, with its runtime restrictions (clock,
    randomness, I/O) but without re-importing modules for every workflow run: that re-import is most of
    the cost of starting an enrollment. Without it, workflow code runs as it is: entering and leaving
    the sandbox for every activation and every payload's serialization context cost about a quarter of
    the worker's CPU per journey (docs/performance.md). Workflow modules keep no module-level state;
    `tests/workflows` runs every workflow in the sandbox, checks the code for non-deterministic calls and
    replays recorded histories, sandboxed."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules())


def use_provider_threads(settings: Settings) -> None:
    """Give the running loop a thread pool as large as the provider calls in flight may be.

    The provider SDKs (Twilio, SendGrid, SMTP, Web Push) block, so each call runs in a thread; the
    default pool (CPU count + 4 threads) would cap a worker at a handful of calls at once however
    many activities it runs."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=settings.provider_threads, thread_name_prefix="provider")
    )


def build_worker(client: Client, settings: Settings, activities: list[Callable[..., Any]]) -> Worker:
    """A worker for the configured task queue with every workflow and the given activities."""
    precompile_workflow_modules()
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(settings.workflow_sandbox),
        activities=activities,
        max_concurrent_activities=100,
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_task_polls=settings.worker_workflow_task_pollers,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


def build_delivery_workers(
    client: Client, settings: Settings, activities: list[Callable[..., Any]]
) -> list[Worker]:
    """One worker per rate-limited provider, on the provider's own task queue.

    The Temporal server dispatches at most `*_MAX_PER_SECOND` activities a second from that queue,
    whichever and however many workers poll it, so a campaign never exceeds the provider account's limit.
    """
    deliver = [activity for activity in activities if getattr(activity, "__name__", "") == "deliver_message"]
    return [
        Worker(
            client,
            task_queue=delivery_queue(settings, provider),
            activities=deliver,
            max_task_queue_activities_per_second=rate,
            max_concurrent_activities=max(1, min(100, int(rate * 10))),
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
        for provider, rate in provider_rate_limits(settings).items()
    ]


def build_workers(client: Client, settings: Settings, activities: list[Callable[..., Any]]) -> list[Worker]:
    """Everything one worker process runs: the main worker and one per rate-limited provider."""
    return [build_worker(client, settings, activities), *build_delivery_workers(client, settings, activities)]


async def run_worker(settings: Settings | None = None) -> None:
    """Run until SIGINT or SIGTERM, then finish in-flight tasks and stop."""
    settings = settings or get_settings()
    refuse_if(configuration_problems(settings), "the worker")
    use_provider_threads(settings)
    client = await connect_temporal(settings)
    added = await ensure_search_attributes(client)
    if added:
        log.info("registered search attributes", extra={"search_attributes": added})
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port)
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    sessions = session_factory(engine)
    await sync_code_journeys(sessions)
    await ensure_schedules(client, settings.temporal_task_queue)
    async with sessions() as session:
        plans = await source_plans(session, settings)
    for plan in plans:
        await ensure_poll_schedule(client, settings.temporal_task_queue, plan.key, plan.poll_seconds)
    activities = build_activities(sessions, settings, client)
    workers = [
        build_worker(client, settings, activities),
        *build_delivery_workers(client, settings, activities),
    ]
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker started", extra={"task_queue": settings.temporal_task_queue, "workers": len(workers)})
    folder = (
        asyncio.create_task(fold_forever(engine, settings.analytics_fold_seconds))
        if settings.analytics_fold_seconds
        else None
    )
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        await stop.wait()
        log.info("worker stopping")
    if folder is not None:
        folder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await folder
    await engine.dispose()


def main() -> None:
    """Entry point for `python worker.py`."""
    configure_logging(get_settings())
    try:
        uvloop.run(run_worker())
    except StartupRefused as error:
        raise SystemExit(f"aftercare worker: error: {error}") from error
    except RuntimeError as error:
        if unavailable_part(error) != TEMPORAL:
            raise
        address = get_settings().temporal_address
        raise SystemExit(
            f"aftercare worker: error: Temporal does not answer at {address} "
            "(start it, or set TEMPORAL_ADDRESS; `make dev` runs one)"
        ) from None


if __name__ == "__main__":
    main()
