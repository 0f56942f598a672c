"""The API process freezes what its start-up built out of the garbage collector's sight; an app built
in a process that builds many (a test's) freezes nothing."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from tests.conftest import serve

STARTED_AND_FROZEN = textwrap.dedent(
    """
    import asyncio, gc, sys
    from aftercare.settings import Settings
    from api.app import create_app

    async def main() -> None:
        settings = Settings(database_url=sys.argv[1], temporal_address="127.0.0.1:9", _env_file=None)
        app = create_app(settings, freeze_after_startup=True)
        before = gc.get_freeze_count()
        async with app.router.lifespan_context(app):
            print(before, gc.get_freeze_count())

    asyncio.run(main())
    """
)


def test_the_served_api_freezes_its_start_up_objects_once_started(settings: Settings) -> None:
    run = subprocess.run(
        [sys.executable, "-c", STARTED_AND_FROZEN, settings.database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    before, after = (int(count) for count in run.stdout.split())
    assert before == 0
    assert after > 100_000  # the modules, schemas and metadata of the whole app


async def test_an_app_built_for_a_test_freezes_nothing(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> None:
    before = gc.get_freeze_count()
    async with serve(create_app(api_settings, temporal=dev_server.client)) as client:
        assert (await client.get("/healthz")).status_code in (200, 503)
    assert gc.get_freeze_count() == before
