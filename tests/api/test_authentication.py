"""Authentication at the API: bearer JWTs from the configured issuer, API keys (revocable, expiring,
scoped), and the development key only in development."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from models.security_tables import ApiKey
from tests.aftercare.security.issuer import Issuer, running_issuer
from tests.conftest import AUTH_HEADERS, serve


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def jwt_api(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine, issuer: Issuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The API accepting JWTs of the test issuer for the audience `aftercare`; no credentials by default."""
    settings = api_settings.model_copy(
        update={"auth_jwt_issuer": issuer.url, "auth_jwt_audience": "aftercare,aftercare-ui"}
    )
    async with serve(create_app(settings, temporal=dev_server.client)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_with_the_role_is_served(jwt_api: httpx.AsyncClient, issuer: Issuer) -> None:
    answer = await jwt_api.get("/v1/journeys", headers=bearer(issuer.token(roles=["marketing"])))
    assert answer.status_code == 200


async def test_any_configured_audience_is_accepted(jwt_api: httpx.AsyncClient, issuer: Issuer) -> None:
    token = issuer.token(audience="aftercare-ui", roles=["marketing"])
    assert (await jwt_api.get("/v1/journeys", headers=bearer(token))).status_code == 200


async def test_a_valid_token_without_the_role_is_forbidden(
    jwt_api: httpx.AsyncClient, issuer: Issuer
) -> None:
    answer = await jwt_api.get("/v1/journeys", headers=bearer(issuer.token(roles=["trigger"])))
    assert answer.status_code == 403
    assert "journeys:read" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"expires_in": -600}, "the token has expired"),
        ({"audience": "someone-else"}, "the token is not meant for this audience"),
        ({"issuer": "https://evil.example"}, "the token comes from another issuer"),
    ],
)
async def test_expired_wrong_audience_and_foreign_tokens_are_401_invalid_token(
    jwt_api: httpx.AsyncClient, issuer: Issuer, claims: dict[str, object], reason: str
) -> None:
    answer = await jwt_api.get("/v1/journeys", headers=bearer(issuer.token(roles=["admin"], **claims)))  # type: ignore[arg-type]
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{reason}"' in challenge


async def test_on_fhir_endpoints_a_refusal_is_an_operation_outcome_with_the_challenge(
    jwt_api: httpx.AsyncClient,
) -> None:
    answer = await jwt_api.post("/v1/fhir/notifications", json={"resourceType": "Patient", "id": "x"})
    assert answer.status_code == 401
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["code"] == "login"
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_jwts_are_refused_when_no_issuer_is_configured(
    anonymous_api: httpx.AsyncClient, issuer: Issuer
) -> None:
    answer = await anonymous_api.get("/v1/journeys", headers=bearer(issuer.token(roles=["admin"])))
    assert answer.status_code == 401
    assert "no issuer configured" in answer.headers["www-authenticate"]


async def make_key(api: httpx.AsyncClient, **body: object) -> dict[str, object]:
    answer = await api.post("/v1/api-keys", json={"name": "ehr", "roles": ["trigger"], **body})
    assert answer.status_code == 201, answer.text
    made: dict[str, object] = answer.json()
    return made


async def test_a_key_works_in_either_header_and_is_stored_only_as_a_hash(
    api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    made = await make_key(api, roles=["marketing"])
    key = str(made["key"])
    assert key.startswith(f"ak_{made['id']}_")

    assert (await anonymous_api.get("/v1/journeys", headers={"X-API-Key": key})).status_code == 200
    assert (await anonymous_api.get("/v1/journeys", headers=bearer(key))).status_code == 200

    from sqlalchemy import text

    async with engine.connect() as connection:
        stored = (
            await connection.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": made["id"]})
        ).one()
    assert key.split("_", 2)[2] not in str(tuple(stored))
    listed = (await api.get("/v1/api-keys")).json()["items"]
    assert [item["id"] for item in listed if item["name"] == "ehr"] == [made["id"]]
    assert "key" not in listed[0]
    assert all(item["last_used_at"] for item in listed if item["id"] == made["id"])


async def test_a_revoked_key_is_refused_at_once(
    api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient
) -> None:
    made = await make_key(api, roles=["marketing"])
    headers = {"X-API-Key": str(made["key"])}
    assert (await anonymous_api.get("/v1/journeys", headers=headers)).status_code == 200

    revoked = await api.delete(f"/v1/api-keys/{made['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]
    # `anonymous_api` is another app instance, as another process would be: it drops the key when its
    # cache entry expires (AUTH_API_KEY_CACHE_SECONDS); this process refuses it at once.
    assert (await api.get("/v1/journeys", headers=headers)).status_code == 401
    assert (await api.delete("/v1/api-keys/unknown")).status_code == 404


async def test_another_process_refuses_a_revoked_key_once_its_cache_expires(
    api: httpx.AsyncClient, api_settings: Settings, dev_server: WorkflowEnvironment
) -> None:
    made = await make_key(api, roles=["marketing"])
    headers = {"X-API-Key": str(made["key"])}
    other = create_app(
        api_settings.model_copy(update={"auth_api_key_cache_seconds": 0.0}), temporal=dev_server.client
    )
    async with serve(other) as elsewhere:
        assert (await elsewhere.get("/v1/journeys", headers=headers)).status_code == 200
        await api.delete(f"/v1/api-keys/{made['id']}")
        assert (await elsewhere.get("/v1/journeys", headers=headers)).status_code == 401


async def test_an_expired_key_is_refused(
    api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    made = await make_key(
        api, roles=["marketing"], expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    async with sessions.begin() as session:  # the hour has gone by
        await session.execute(update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    answer = await anonymous_api.get("/v1/journeys", headers={"X-API-Key": str(made["key"])})
    assert answer.status_code == 401
    assert "expired" in answer.headers["www-authenticate"]


@pytest.mark.parametrize("expires_at", ["2001-01-01T00:00:00Z", "2001-01-01T00:00:00"])
async def test_a_key_cannot_be_made_already_expired(api: httpx.AsyncClient, expires_at: str) -> None:
    answer = await api.post(
        "/v1/api-keys", json={"name": "x", "roles": ["trigger"], "expires_at": expires_at}
    )
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "expires_at"]
    assert "must expire in the future" in problem["msg"]
    assert (await api.get("/v1/api-keys")).json()["items"] == []


async def test_scopes_narrow_a_keys_roles(api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient) -> None:
    made = await make_key(api, roles=["marketing"], scopes=["journeys:read"])
    headers = {"X-API-Key": str(made["key"])}
    assert (await anonymous_api.get("/v1/journeys", headers=headers)).status_code == 200
    assert (await anonymous_api.get("/v1/segments", headers=headers)).status_code == 403


async def test_unknown_roles_and_scopes_are_refused_when_making_a_key(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/api-keys", json={"name": "x", "roles": ["superuser"]})).status_code == 422
    assert (await api.post("/v1/api-keys", json={"name": "x", "roles": []})).status_code == 422
    answer = await api.post("/v1/api-keys", json={"name": "x", "roles": ["trigger"], "scopes": ["all"]})
    assert answer.status_code == 422


async def test_the_development_key_is_not_accepted_outside_development(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> None:
    settings = api_settings.model_copy(
        update={
            "aftercare_env": "production",
            "auth_jwt_issuer": "https://idp.example",
            "auth_jwt_audience": "a",
        }
    )
    assert settings.aftercare_dev_api_key is not None
    with pytest.raises(Exception, match="AFTERCARE_DEV_API_KEY is for development only"):
        async with serve(create_app(settings, temporal=dev_server.client), AUTH_HEADERS):
            pass
    allowed = settings.model_copy(update={"aftercare_dev_api_key": None})
    async with serve(create_app(allowed, temporal=dev_server.client), AUTH_HEADERS) as client:
        assert (await client.get("/v1/journeys")).status_code == 401


async def test_production_without_jwts_or_any_api_key_refuses_to_start(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: AsyncEngine,
    api: httpx.AsyncClient,
) -> None:
    settings = api_settings.model_copy(update={"aftercare_env": "production", "aftercare_dev_api_key": None})
    with pytest.raises(Exception, match="no way to authenticate"):
        async with serve(create_app(settings, temporal=dev_server.client)):
            pass
    made = await make_key(api, roles=["admin"])
    async with serve(
        create_app(settings, temporal=dev_server.client), {"X-API-Key": str(made["key"])}
    ) as client:
        assert (await client.get("/v1/api-keys")).status_code == 200


async def test_production_without_codec_keys_refuses_to_start_the_worker(api_settings: Settings) -> None:
    from aftercare.security.startup import StartupRefused
    from worker import run_worker

    settings = api_settings.model_copy(
        update={"aftercare_env": "production", "aftercare_dev_api_key": None, "aftercare_codec_keys": None}
    )
    with pytest.raises(StartupRefused, match="the worker refuses to start: AFTERCARE_CODEC_KEYS"):
        await run_worker(settings)


def test_a_secret_in_settings_is_never_shown() -> None:
    settings = Settings(aftercare_dev_api_key=SecretStr("ak_dev_secret"), _env_file=None)  # type: ignore[call-arg]
    assert "ak_dev_secret" not in repr(settings)
    assert "ak_dev_secret" not in str(settings.model_dump())
