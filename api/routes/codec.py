"""The codec server: the Temporal Web UI (and CLI) send encrypted payloads here to show them decoded,
and plain ones to have them encrypted. Callers authenticate like any API caller (a bearer token from
the UI's "pass access token", or an API key); the development UI, which cannot send headers to an http
endpoint, uses a path credential that grants the codec and nothing else (`/codec/ui/{token}`)."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, HTTPException, status
from temporalio.api.common.v1 import Payload

from aftercare.security.codec import PayloadDecryptionError
from api.deps import ServicesDep
from models.security_api import CodecPayload, CodecPayloads

router = APIRouter(prefix="/codec", tags=["codec"])


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{where} is not base64") from error


def _to_payloads(body: CodecPayloads) -> list[Payload]:
    return [
        Payload(
            metadata={
                key: _b64(value, f"payloads[{index}].metadata.{key}") for key, value in item.metadata.items()
            },
            data=_b64(item.data, f"payloads[{index}].data"),
        )
        for index, item in enumerate(body.payloads)
    ]


def _from_payloads(payloads: list[Payload]) -> CodecPayloads:
    return CodecPayloads(
        payloads=[
            CodecPayload(
                metadata={key: base64.b64encode(value).decode() for key, value in payload.metadata.items()},
                data=base64.b64encode(payload.data).decode(),
            )
            for payload in payloads
        ]
    )


async def _encode(body: CodecPayloads, services: ServicesDep) -> CodecPayloads:
    payloads = _to_payloads(body)
    if services.codec is None:  # development without keys: nothing is encrypted
        return body
    return _from_payloads(await services.codec.encode(payloads))


async def _decode(body: CodecPayloads, services: ServicesDep) -> CodecPayloads:
    payloads = _to_payloads(body)
    if services.codec is None:
        return body
    try:
        return _from_payloads(await services.codec.decode(payloads))
    except PayloadDecryptionError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error


@router.post("/encode", response_model=CodecPayloads)
async def encode(body: CodecPayloads, services: ServicesDep) -> CodecPayloads:
    """Encrypt payloads with the current key."""
    return await _encode(body, services)


@router.post("/decode", response_model=CodecPayloads)
async def decode(body: CodecPayloads, services: ServicesDep) -> CodecPayloads:
    """Decrypt payloads (a tampered one is a 400); payloads that are not encrypted come back unchanged."""
    return await _decode(body, services)


@router.post("/ui/{token}/encode", response_model=CodecPayloads, include_in_schema=False)
async def encode_for_ui(token: str, body: CodecPayloads, services: ServicesDep) -> CodecPayloads:
    """`/codec/encode` for the development Temporal UI."""
    return await _encode(body, services)


@router.post("/ui/{token}/decode", response_model=CodecPayloads, include_in_schema=False)
async def decode_for_ui(token: str, body: CodecPayloads, services: ServicesDep) -> CodecPayloads:
    """`/codec/decode` for the development Temporal UI."""
    return await _decode(body, services)
