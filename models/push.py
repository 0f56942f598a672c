"""Web Push request and response schemas: a browser's PushSubscription, and what the API says back.

A subscription is the JSON a browser's `PushSubscription.toJSON()` produces (RFC 8030 endpoint, RFC 8291
keys). Its endpoint must be an `https` URL, as every real push service's is; plain `http` is accepted
only for a loopback host (127.0.0.1, ::1, localhost), for a push service emulator in development.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

P256DH_BYTES = 65
AUTH_BYTES = 16
MAX_ENDPOINT_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


def decode_base64url(value: str) -> bytes:
    """Bytes of unpadded (or padded) base64url text; ValueError for anything else (`+`, `/`, spaces)."""
    if not _BASE64URL.fullmatch(value):
        raise ValueError("not base64url (A-Z a-z 0-9 - _)")
    unpadded = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url: its length is impossible") from error


def encode_base64url(value: bytes) -> str:
    """Unpadded base64url text, as browsers and RFC 8292 write keys."""
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def _push_endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the endpoint must be an https URL of a push service")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError("the endpoint must be https (plain http only for a loopback push service)")
    if parts.username or parts.password:
        raise ValueError("the endpoint must not carry credentials")
    return value


def _p256dh(value: str) -> str:
    raw = decode_base64url(value)
    if len(raw) != P256DH_BYTES or raw[0] != 0x04:
        raise ValueError(f"p256dh must be a {P256DH_BYTES}-byte uncompressed P-256 point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as error:
        raise ValueError("p256dh is not a point on the P-256 curve") from error
    return encode_base64url(raw)


def _auth_secret(value: str) -> str:
    raw = decode_base64url(value)
    if len(raw) != AUTH_BYTES:
        raise ValueError(f"auth must be a {AUTH_BYTES}-byte secret")
    return encode_base64url(raw)


PushEndpoint = Annotated[str, Field(max_length=MAX_ENDPOINT_LENGTH), AfterValidator(_push_endpoint)]
P256dhKey = Annotated[str, Field(max_length=200), AfterValidator(_p256dh)]
AuthSecret = Annotated[str, Field(max_length=100), AfterValidator(_auth_secret)]


class PushSubscriptionKeys(BaseModel):
    """The subscriber's ECDH public key and authentication secret (RFC 8291), stored unpadded."""

    # Browsers may add members to PushSubscription JSON; what is not needed is dropped, not refused.
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    p256dh: P256dhKey
    auth: AuthSecret


class PushSubscriptionCreate(BaseModel):
    """A browser's `PushSubscription.toJSON()`, with an optional label for the device."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    endpoint: PushEndpoint
    expiration_time: float | None = Field(default=None, alias="expirationTime", ge=0)
    keys: PushSubscriptionKeys
    device: str | None = Field(default=None, max_length=200)


class PushSubscriptionView(BaseModel):
    """A stored subscription; its keys are never shown again."""

    model_config = ConfigDict(frozen=True)

    id: str
    patient_id: str
    endpoint: str
    device: str | None
    created_at: datetime


class PushSubscriptionList(BaseModel):
    """A patient's subscriptions, oldest first."""

    model_config = ConfigDict(frozen=True)

    items: list[PushSubscriptionView]


class VapidPublicKey(BaseModel):
    """The VAPID public key a browser passes as `applicationServerKey` to `PushManager.subscribe()`."""

    model_config = ConfigDict(frozen=True)

    public_key: str
