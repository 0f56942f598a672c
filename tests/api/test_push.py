"""Web Push over the API: the VAPID public key for `PushManager.subscribe()`, and a patient's devices."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, serve
from tests.helpers import load_synthea_patient

SUBSCRIPTIONS = f"/v1/patients/{ABDUL_PATIENT_ID}/push-subscriptions"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PEM = VAPID_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
VAPID_PUBLIC = b64url(point(VAPID_KEY))


def browser_subscription(endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    """What `JSON.stringify(pushSubscription)` sends, from a fresh browser key pair."""
    return {
        "endpoint": endpoint or f"https://fcm.googleapis.com/fcm/send/{uuid.uuid4().hex}",
        "expirationTime": None,
        "keys": {
            "p256dh": b64url(point(ec.generate_private_key(ec.SECP256R1()))),
            "auth": b64url(uuid.uuid4().bytes),
        },
        **extra,
    }


async def client_for(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    from api.app import create_app

    async with serve(create_app(settings, temporal=dev_server.client), AUTH_HEADERS) as client:
        yield client


@pytest.fixture
async def push_api(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with VAPID keys configured (the private key as a PEM) and Abdul in the store."""
    configured = api_settings.model_copy(
        update={"vapid_private_key": SecretStr(VAPID_PEM), "vapid_public_key": VAPID_PUBLIC}
    )
    await load_synthea_patient(sessions)
    async for client in client_for(configured, dev_server):
        yield client


async def test_the_public_key_is_the_browsers_application_server_key(push_api: httpx.AsyncClient) -> None:
    response = await push_api.get("/v1/push/public-key")

    assert response.status_code == 200
    assert response.json() == {"public_key": VAPID_PUBLIC}
    raw = base64.urlsafe_b64decode(VAPID_PUBLIC + "=")
    assert (len(raw), raw[0]) == (65, 0x04)


async def test_the_public_key_is_derived_from_a_raw_private_key_too(
    api_settings: Settings, dev_server: WorkflowEnvironment
) -> None:
    raw = b64url(VAPID_KEY.private_numbers().private_value.to_bytes(32, "big"))
    configured = api_settings.model_copy(
        update={"vapid_private_key": SecretStr(raw), "vapid_public_key": VAPID_PUBLIC}
    )
    async for client in client_for(configured, dev_server):
        response = await client.get("/v1/push/public-key")
    assert response.json() == {"public_key": VAPID_PUBLIC}


async def test_without_vapid_keys_there_is_no_public_key(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/push/public-key")

    assert response.status_code == 503
    assert "not configured" in response.json()["detail"]


async def test_a_public_key_setting_that_does_not_match_the_private_key_is_reported(
    api_settings: Settings, dev_server: WorkflowEnvironment
) -> None:
    other = b64url(point(ec.generate_private_key(ec.SECP256R1())))
    configured = api_settings.model_copy(
        update={"vapid_private_key": SecretStr(VAPID_PEM), "vapid_public_key": other}
    )
    async for client in client_for(configured, dev_server):
        response = await client.get("/v1/push/public-key")
    assert response.status_code == 503
    assert "VAPID_PUBLIC_KEY" in response.json()["detail"]
    assert "PRIVATE KEY-----" not in response.text


async def test_a_browser_subscription_is_stored_and_listed_without_its_keys(
    push_api: httpx.AsyncClient,
) -> None:
    subscription = browser_subscription(device="Pixel 8, Chrome")

    created = await push_api.post(SUBSCRIPTIONS, json=subscription)

    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "patient_id", "endpoint", "device", "created_at"}
    assert (body["patient_id"], body["endpoint"], body["device"]) == (
        ABDUL_PATIENT_ID,
        subscription["endpoint"],
        "Pixel 8, Chrome",
    )
    listed = await push_api.get(SUBSCRIPTIONS)
    assert listed.status_code == 200
    assert listed.json() == {"items": [body]}
    assert subscription["keys"]["p256dh"] not in listed.text
    assert subscription["keys"]["auth"] not in listed.text


async def test_subscribing_the_same_endpoint_again_replaces_its_keys(push_api: httpx.AsyncClient) -> None:
    endpoint = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA"
    first = await push_api.post(SUBSCRIPTIONS, json=browser_subscription(endpoint))
    second = await push_api.post(SUBSCRIPTIONS, json=browser_subscription(endpoint, device="Firefox"))

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["id"] == first.json()["id"]
    [item] = (await push_api.get(SUBSCRIPTIONS)).json()["items"]
    assert item["device"] == "Firefox"


async def test_a_subscription_can_be_deleted_once(push_api: httpx.AsyncClient) -> None:
    created = (await push_api.post(SUBSCRIPTIONS, json=browser_subscription())).json()

    assert (await push_api.delete(f"{SUBSCRIPTIONS}/{created['id']}")).status_code == 204
    assert (await push_api.get(SUBSCRIPTIONS)).json() == {"items": []}
    assert (await push_api.delete(f"{SUBSCRIPTIONS}/{created['id']}")).status_code == 404


async def test_another_patients_subscription_cannot_be_deleted(push_api: httpx.AsyncClient) -> None:
    created = (await push_api.post(SUBSCRIPTIONS, json=browser_subscription())).json()

    response = await push_api.delete(f"/v1/patients/someone-else/push-subscriptions/{created['id']}")

    assert response.status_code == 404
    assert len((await push_api.get(SUBSCRIPTIONS)).json()["items"]) == 1


async def test_an_unknown_patient_has_no_subscriptions(push_api: httpx.AsyncClient) -> None:
    missing = "/v1/patients/no-such-patient/push-subscriptions"

    assert (await push_api.post(missing, json=browser_subscription())).status_code == 404
    assert (await push_api.get(missing)).status_code == 404


async def test_a_loopback_push_service_may_use_plain_http(push_api: httpx.AsyncClient) -> None:
    for endpoint in ("http://127.0.0.1:8089/push/1", "http://localhost/push/2"):
        response = await push_api.post(SUBSCRIPTIONS, json=browser_subscription(endpoint))
        assert response.status_code == 201, response.text


def _with_keys(**keys: str) -> dict[str, Any]:
    subscription = browser_subscription()
    subscription["keys"] = {**subscription["keys"], **keys}
    return subscription


NOT_ON_THE_CURVE = b64url(b"\x04" + b"\x01" * 64)


@pytest.mark.parametrize(
    ("subscription", "field"),
    [
        (browser_subscription("http://push.example.com/send/1"), "endpoint"),
        (browser_subscription("ftp://push.example.com/send/1"), "endpoint"),
        (browser_subscription("javascript:alert(1)"), "endpoint"),
        (browser_subscription("https://user:secret@push.example.com/x"), "endpoint"),
        (browser_subscription("https://push.example.com/" + "x" * 2100), "endpoint"),
        (_with_keys(p256dh=b64url(b"\x04" + b"\x01" * 31)), "p256dh"),
        (_with_keys(p256dh=b64url(b"\x02" + b"\x01" * 64)), "p256dh"),
        (_with_keys(p256dh=NOT_ON_THE_CURVE), "p256dh"),
        (_with_keys(p256dh="BNc+/x"), "p256dh"),
        (_with_keys(auth=b64url(b"\x00" * 15)), "auth"),
        (_with_keys(auth=b64url(b"\x00" * 16) + "!"), "auth"),
        ({"endpoint": "https://push.example.com/x", "expirationTime": None}, "keys"),
    ],
    ids=[
        "http-not-loopback",
        "ftp",
        "javascript",
        "credentials",
        "too-long",
        "p256dh-short",
        "p256dh-compressed",
        "p256dh-off-curve",
        "p256dh-standard-base64",
        "auth-15-bytes",
        "auth-not-base64url",
        "no-keys",
    ],
)
async def test_an_unusable_subscription_is_refused(
    push_api: httpx.AsyncClient, subscription: dict[str, Any], field: str
) -> None:
    response = await push_api.post(SUBSCRIPTIONS, json=subscription)

    assert response.status_code == 422
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert (await push_api.get(SUBSCRIPTIONS)).json() == {"items": []}
