"""Fixtures of the analytics tests that run journeys: a time-skipping server of the test's own and the
API app on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from tests.conftest import AUTH_HEADERS, serve
from tests.workflows.fixtures import started_time_skipping_env


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of the test's own: its journeys wait with time skipping unlocked, and one may be left
    waiting (the test terminates it)."""
    async with started_time_skipping_env() as env:
        yield env


@pytest.fixture
async def api(settings: Settings, time_skipping_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """The API app on the test's database and server, with the all-roles development key."""
    from api.app import create_app

    async with serve(create_app(settings, temporal=time_skipping_env.client), AUTH_HEADERS) as client:
        yield client
