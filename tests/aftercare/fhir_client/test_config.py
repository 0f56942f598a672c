"""Building FhirClients from configuration: the `FHIR_*` settings and registered sources whose `auth`
names the environment variables or files holding the secrets. Each built client talks to a real server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aftercare.fhir_client.auth import BearerToken, ClientCredentials, NoAuth, SmartBackendServices
from aftercare.fhir_client.config import (
    check_source_auth,
    client_for_settings,
    client_for_source,
    secret_named,
)
from aftercare.fhir_client.errors import FhirConfigError
from aftercare.settings import Settings
from tests.fhir_server import FhirTestServer


@dataclass
class Source:
    """What `client_for_source` needs of a registered source."""

    base_url: str
    auth: dict[str, Any] = field(default_factory=dict)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def rsa_pems() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture
def locked(fhir: FhirTestServer) -> FhirTestServer:
    fhir.put({"resourceType": "Patient", "id": "p1"})
    fhir.require_auth = True
    fhir.register_client("aftercare", secret="client-secret")
    return fhir


def test_without_a_base_url_there_is_no_default_client() -> None:
    assert client_for_settings(settings(fhir_base_url=None)) is None


async def test_settings_without_auth_build_an_open_client(fhir: FhirTestServer) -> None:
    fhir.put({"resourceType": "Patient", "id": "p1"})
    client = client_for_settings(settings(fhir_base_url=fhir.base_url, fhir_timeout_seconds=5))
    assert client is not None
    async with client:
        assert isinstance(client.auth, NoAuth)
        assert (await client.read("Patient", "p1"))["id"] == "p1"


async def test_settings_with_a_bearer_token(locked: FhirTestServer) -> None:
    token = locked.oauth.issue_token(
        {"grant_type": "client_credentials"}, "Basic YWZ0ZXJjYXJlOmNsaWVudC1zZWNyZXQ=", ""
    )
    client = client_for_settings(
        settings(fhir_base_url=locked.base_url, fhir_auth="bearer", fhir_bearer_token=token["access_token"])
    )
    assert client is not None
    async with client:
        assert isinstance(client.auth, BearerToken)
        assert (await client.read("Patient", "p1"))["id"] == "p1"


async def test_settings_with_client_credentials_discover_the_token_url(locked: FhirTestServer) -> None:
    client = client_for_settings(
        settings(
            fhir_base_url=locked.base_url,
            fhir_auth="client_credentials",
            fhir_client_id="aftercare",
            fhir_client_secret="client-secret",
        )
    )
    assert client is not None
    async with client:
        assert isinstance(client.auth, ClientCredentials)
        assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert locked.token_requests == 1


async def test_settings_with_smart_backend_read_the_key_file(locked: FhirTestServer, tmp_path: Path) -> None:
    private, public = rsa_pems()
    (tmp_path / "key.pem").write_text(private)
    locked.register_key("backend", public, "kid-1")
    client = client_for_settings(
        settings(
            fhir_base_url=locked.base_url,
            fhir_auth="smart_backend",
            fhir_client_id="backend",
            fhir_key_id="kid-1",
            fhir_private_key_file=str(tmp_path / "key.pem"),
        )
    )
    assert client is not None
    async with client:
        assert isinstance(client.auth, SmartBackendServices)
        assert (await client.read("Patient", "p1"))["id"] == "p1"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fhir_auth": "bearer"}, "FHIR_AUTH=bearer needs FHIR_BEARER_TOKEN"),
        (
            {"fhir_auth": "smart_backend", "fhir_client_id": "c", "fhir_key_id": "k"},
            "needs FHIR_PRIVATE_KEY or FHIR_PRIVATE_KEY_FILE",
        ),
        (
            {"fhir_auth": "smart_backend", "fhir_private_key_file": "/nonexistent/key.pem"},
            "FHIR_PRIVATE_KEY_FILE cannot be read",
        ),
        ({"fhir_auth": "client_credentials", "fhir_client_id": "c"}, "need a client id and a client secret"),
    ],
)
def test_incomplete_settings_are_config_errors_naming_the_setting(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(FhirConfigError, match=message):
        client_for_settings(settings(fhir_base_url="https://fhir.example/r4", **values))


async def test_a_source_reads_its_secrets_from_the_environment(
    locked: FhirTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_FHIR_SECRET", "client-secret")
    source = Source(
        locked.base_url,
        {
            "kind": "client_credentials",
            "client_id": "aftercare",
            "client_secret_env": "TEST_FHIR_SECRET",
            "timeout_seconds": 5,
        },
    )
    async with client_for_source(source) as client:
        assert (await client.read("Patient", "p1"))["id"] == "p1"


async def test_a_source_reads_its_private_key_from_a_file(locked: FhirTestServer, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "es384.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    locked.register_key("backend", key.public_key(), "es-1")
    source = Source(
        locked.base_url,
        {
            "kind": "smart_backend",
            "client_id": "backend",
            "key_id": "es-1",
            "algorithm": "ES384",
            "private_key_file": str(tmp_path / "es384.pem"),
        },
    )
    async with client_for_source(source) as client:
        assert isinstance(client.auth, SmartBackendServices)
        assert client.auth.algorithm == "ES384"
        assert (await client.read("Patient", "p1"))["id"] == "p1"


async def test_an_open_source_over_tls_trusts_its_ca_bundle() -> None:
    from tests.fhir_server import running_fhir_server

    async with running_fhir_server(tls=True) as fhir:
        fhir.put({"resourceType": "Patient", "id": "p1"})
        assert fhir.tls is not None
        source = Source(fhir.base_url, {"kind": "none", "tls": {"ca_bundle": str(fhir.tls.ca_file)}})
        async with client_for_source(source) as client:
            assert (await client.read("Patient", "p1"))["id"] == "p1"


def test_a_source_with_a_missing_secret_names_the_variable_not_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEST_FHIR_TOKEN", raising=False)
    with pytest.raises(
        FhirConfigError, match=r"environment variable TEST_FHIR_TOKEN \(auth.token_env\) is not set"
    ):
        client_for_source(Source("https://fhir.example", {"kind": "bearer", "token_env": "TEST_FHIR_TOKEN"}))
    with pytest.raises(FhirConfigError, match="auth kind must be one of"):
        client_for_source(Source("https://fhir.example", {"kind": "magic"}))
    with pytest.raises(FhirConfigError, match=r"auth\.token_env or auth\.token_file is required"):
        secret_named({}, "token")


@pytest.mark.parametrize(
    ("auth", "problems"),
    [
        ({"kind": "none"}, []),
        ({}, []),
        ({"kind": "bearer", "token_env": "X"}, []),
        ({"kind": "bearer"}, ["auth.token_env or auth.token_file is required for bearer"]),
        ({"kind": "oauth"}, ["auth.kind must be one of none, bearer, client_credentials, smart_backend"]),
        (
            {"kind": "client_credentials", "client_secret_file": "/run/secret"},
            ["auth.client_id is required for client_credentials"],
        ),
        (
            {"kind": "smart_backend", "client_id": "c", "private_key_env": "K", "algorithm": "HS256"},
            ["auth.algorithm must be RS384 or ES384", "auth.key_id is required for smart_backend"],
        ),
        (
            {"kind": "bearer", "token_env": "X", "token": "abc"},
            ["auth.token must not hold a secret; name an environment variable or file"],
        ),
    ],
)
def test_check_source_auth_says_what_is_wrong_without_reading_secrets(
    auth: dict[str, Any], problems: list[str]
) -> None:
    assert check_source_auth(auth) == problems
