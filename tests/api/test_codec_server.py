"""The codec server the Temporal Web UI decodes payloads with: the UI's JSON format, authentication,
tampered payloads refused, and CORS only for the UI's origin."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from aftercare.security.dev_keys import codec_ui_token
from aftercare.settings import Settings
from api.app import create_app
from tests.conftest import AUTH_HEADERS, DEV_API_KEY, serve

UI = "http://127.0.0.1:8233"
PLAIN = {
    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
    "data": base64.b64encode(b'{"given": "Abdul"}').decode(),
}


@pytest.fixture
async def codec_api(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings.model_copy(update={"temporal_ui_origins": [UI]})
    async with serve(create_app(settings, temporal=dev_server.client)) as client:
        yield client


async def test_encoded_payloads_decode_to_what_was_encoded(codec_api: httpx.AsyncClient) -> None:
    encoded = await codec_api.post("/codec/encode", json={"payloads": [PLAIN]}, headers=AUTH_HEADERS)
    assert encoded.status_code == 200
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"Abdul" not in base64.b64decode(sealed["data"])

    decoded = await codec_api.post("/codec/decode", json={"payloads": [sealed]}, headers=AUTH_HEADERS)

    assert decoded.json() == {"payloads": [PLAIN]}


async def test_a_tampered_payload_is_refused_with_the_reason(codec_api: httpx.AsyncClient) -> None:
    [sealed] = (
        await codec_api.post("/codec/encode", json={"payloads": [PLAIN]}, headers=AUTH_HEADERS)
    ).json()["payloads"]
    data = bytearray(base64.b64decode(sealed["data"]))
    data[-1] ^= 0xFF
    tampered = {**sealed, "data": base64.b64encode(bytes(data)).decode()}

    answer = await codec_api.post("/codec/decode", json={"payloads": [tampered]}, headers=AUTH_HEADERS)

    assert answer.status_code == 400
    assert "altered or is corrupt" in answer.json()["detail"]


async def test_malformed_base64_is_a_422_naming_the_place(codec_api: httpx.AsyncClient) -> None:
    answer = await codec_api.post(
        "/codec/decode", json={"payloads": [{"metadata": {}, "data": "%%%"}]}, headers=AUTH_HEADERS
    )
    assert answer.status_code == 422
    assert "payloads[0].data" in answer.json()["detail"]


async def test_the_codec_needs_a_caller_with_the_codec_permission(codec_api: httpx.AsyncClient) -> None:
    body = {"payloads": [PLAIN]}
    assert (await codec_api.post("/codec/decode", json=body)).status_code == 401
    made = await codec_api.post(
        "/v1/api-keys", json={"name": "clinician", "roles": ["healthcare"]}, headers=AUTH_HEADERS
    )
    forbidden = await codec_api.post("/codec/decode", json=body, headers={"X-API-Key": made.json()["key"]})
    assert forbidden.status_code == 403


async def test_the_development_ui_decodes_through_its_path_credential_and_nothing_else(
    codec_api: httpx.AsyncClient,
) -> None:
    token = codec_ui_token(DEV_API_KEY)
    body = {"payloads": [PLAIN]}
    assert (await codec_api.post(f"/codec/ui/{token}/decode", json=body)).status_code == 200
    assert (await codec_api.post(f"/codec/ui/{'0' * 40}/decode", json=body)).status_code == 401
    # the path credential opens the codec only
    assert (await codec_api.get("/v1/journeys", headers={"X-API-Key": token})).status_code == 401


async def test_the_ui_origin_may_call_the_codec_from_the_browser_and_no_other(
    codec_api: httpx.AsyncClient,
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    allowed = await codec_api.options("/codec/decode", headers={"Origin": UI, **preflight})
    refused = await codec_api.options(
        "/codec/decode", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers

    api_preflight = await codec_api.options("/v1/journeys", headers={"Origin": UI, **preflight})
    assert "access-control-allow-origin" not in api_preflight.headers


@pytest.mark.parametrize("operation", ["encode", "decode"])
async def test_a_missing_payload_list_is_an_empty_one_as_the_temporal_cli_sends_it(
    codec_api: httpx.AsyncClient, operation: str
) -> None:
    answer = await codec_api.post(f"/codec/{operation}", json={}, headers=AUTH_HEADERS)

    assert answer.status_code == 200
    assert answer.json() == {"payloads": []}
