"""Authenticating to a FHIR server: a fixed bearer token, OAuth client credentials (HTTP Basic) and SMART
Backend Services (RS384 / ES384 JWT assertions), with token caching and one refresh on a 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aftercare.fhir_client.assertion import CLIENT_ASSERTION_TYPE, SigningAlgorithm, client_assertion
from aftercare.fhir_client.auth import BearerToken, ClientCredentials, NoAuth, SmartBackendServices
from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirAuthError, FhirConfigError
from tests.aftercare.fhir_client.conftest import Sleeps
from tests.fhir_server import FhirTestServer

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(algorithm: SigningAlgorithm) -> PrivateKey:
    """A fresh key pair for the algorithm."""
    if algorithm == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1())


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def locked(fhir: FhirTestServer) -> FhirTestServer:
    """A server that wants a bearer token on every FHIR request, holding one patient."""
    fhir.put({"resourceType": "Patient", "id": "p1"})
    fhir.require_auth = True
    return fhir


async def test_without_a_token_a_locked_server_answers_401(locked: FhirTestServer) -> None:
    async with FhirClient(locked.base_url, auth=NoAuth()) as client:
        with pytest.raises(FhirAuthError) as raised:
            await client.read("Patient", "p1")
        statement = await client.capabilities()  # metadata stays open
    assert raised.value.status == 401
    assert raised.value.issues == ["a valid bearer token is required"]
    assert statement["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"] == locked.token_url


async def test_a_bearer_token_is_sent_as_is(locked: FhirTestServer) -> None:
    locked.register_client("ops", secret="s3cret")
    token = locked.oauth.issue_token({"grant_type": "client_credentials"}, "Basic b3BzOnMzY3JldA==", "")
    async with FhirClient(locked.base_url, auth=BearerToken(token["access_token"])) as client:
        assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert repr(BearerToken(token["access_token"])) == "BearerToken(***)"


async def test_client_credentials_discover_the_token_url_and_cache_the_token(locked: FhirTestServer) -> None:
    locked.register_client("aftercare", secret="a:b c/d")  # escaped as RFC 6749 asks
    auth = ClientCredentials(None, "aftercare", "a:b c/d", "system/*.rs", base_url=locked.base_url)
    async with FhirClient(locked.base_url, auth=auth) as client:
        for _ in range(5):
            await client.read("Patient", "p1")
        await asyncio.gather(*(client.read("Patient", "p1") for _ in range(5)))
    assert locked.token_requests == 1
    assert await auth.token_url(client._http) == locked.token_url


async def test_a_wrong_client_secret_is_fhir_auth_error_with_the_oauth_error(locked: FhirTestServer) -> None:
    locked.register_client("aftercare", secret="right")
    auth = ClientCredentials(locked.token_url, "aftercare", "guessed-42", base_url=None)
    async with FhirClient(locked.base_url, auth=auth) as client:
        with pytest.raises(FhirAuthError) as raised:
            await client.read("Patient", "p1")
    assert raised.value.status == 401
    assert raised.value.issues == ["invalid_client: unknown client or wrong secret"]
    assert "guessed-42" not in str(raised.value)


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
async def test_smart_backend_services_sign_an_assertion_the_server_verifies(
    locked: FhirTestServer, algorithm: SigningAlgorithm
) -> None:
    key = new_key(algorithm)
    locked.register_key("aftercare-backend", public_pem(key), key_id="key-1")
    auth = SmartBackendServices(
        "aftercare-backend", private_pem(key), "key-1", algorithm, base_url=locked.base_url
    )
    async with FhirClient(locked.base_url, auth=auth) as client:
        for _ in range(3):
            assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert locked.token_requests == 1


async def test_after_the_tokens_expire_one_401_gets_a_new_token_and_the_request_succeeds(
    locked: FhirTestServer,
) -> None:
    key = new_key("ES384")
    locked.register_key("aftercare-backend", public_pem(key), key_id="key-1")
    auth = SmartBackendServices(
        "aftercare-backend", private_pem(key), "key-1", "ES384", base_url=locked.base_url
    )
    async with FhirClient(locked.base_url, auth=auth) as client:
        await client.read("Patient", "p1")
        locked.expire_tokens()
        assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert locked.token_requests == 2
    assert [path for _, path, _ in locked.requests] == ["Patient/p1"] * 3  # ok, 401, ok


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (
            lambda server, key: server.register_key(
                "aftercare-backend", public_pem(new_key("RS384")), "key-1"
            ),
            "Signature verification failed",
        ),
        (
            lambda server, key: server.register_key("aftercare-backend", public_pem(key), "other-kid"),
            "no key registered under kid 'key-1'",
        ),
        (
            lambda server, key: server.register_key("someone-else", public_pem(key), "key-1"),
            "unknown client (iss)",
        ),
    ],
)
async def test_a_key_the_server_does_not_know_is_fhir_auth_error(
    locked: FhirTestServer, register: Callable[[FhirTestServer, PrivateKey], None], message: str
) -> None:
    key = new_key("RS384")
    register(locked, key)
    auth = SmartBackendServices(
        "aftercare-backend", private_pem(key), "key-1", "RS384", base_url=locked.base_url
    )
    async with FhirClient(locked.base_url, auth=auth) as client:
        with pytest.raises(FhirAuthError) as raised:
            await client.read("Patient", "p1")
    assert raised.value.status == 400
    assert message in str(raised.value)


async def test_a_replayed_assertion_is_refused(locked: FhirTestServer) -> None:
    key = new_key("ES384")
    locked.register_key("aftercare-backend", public_pem(key), key_id="k")
    assertion = client_assertion(
        client_id="aftercare-backend",
        token_url=locked.token_url,
        key=key,
        key_id="k",
        algorithm="ES384",
        now=time.time(),
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    async with httpx.AsyncClient() as http:
        first = await http.post(locked.token_url, data=form)
        second = await http.post(locked.token_url, data=form)
    assert first.status_code == 200
    assert first.json()["expires_in"] == 300
    assert (second.status_code, second.json()["error_description"]) == (400, "jti was used before")


def test_a_key_that_does_not_suit_the_algorithm_is_a_config_error() -> None:
    with pytest.raises(FhirConfigError, match="does not suit ES384"):
        SmartBackendServices("c", private_pem(new_key("RS384")), "k", "ES384", base_url="http://x")
    with pytest.raises(FhirConfigError, match="not an unencrypted PEM private key"):
        SmartBackendServices("c", "not a key", "k", "RS384", base_url="http://x")
    with pytest.raises(FhirConfigError, match="token URL"):
        ClientCredentials(None, "c", "s")


async def test_a_busy_token_endpoint_is_waited_for_as_it_asks(locked: FhirTestServer, sleeps: Sleeps) -> None:
    locked.register_client("aftercare", secret="s")
    locked.fail_next_token(1, status=503, retry_after="4")
    auth = ClientCredentials(None, "aftercare", "s", base_url=locked.base_url)
    async with FhirClient(locked.base_url, auth=auth, sleep=sleeps) as client:
        assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert sleeps.waits == [4.0]
    assert locked.token_requests == 2
