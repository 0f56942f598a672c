"""API schemas of security: API keys, the audit trail, and the codec endpoints' payloads."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

from models.roles import Permission, Role


def future_expiry(expires_at: datetime | None) -> datetime | None:
    """A key's expiry, checked: a moment still ahead (a time without a zone is UTC). A key made already
    expired would be refused at its first use, so it is refused here instead (`ValueError`)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= datetime.now(UTC):
        raise ValueError(
            f"expires_at {expires_at.isoformat()} has passed: a new key must expire in the future"
        )
    return expires_at


class ApiKeyRequest(BaseModel):
    """A key to make: who it is for, its roles, and optionally scopes (permissions) narrowing them."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
    roles: list[Role] = Field(min_length=1)
    scopes: list[Permission] = []
    expires_at: datetime | None = None
    facilities: list[str] = Field(
        default=[], description="facility keys whose subtrees the key reaches; none: the whole group"
    )

    @field_validator("expires_at")
    @classmethod
    def _expires_ahead(cls, value: datetime | None) -> datetime | None:
        return future_expiry(value)


class ApiKeyView(BaseModel):
    """A key as listings show it: never its secret."""

    id: str
    name: str
    roles: list[str]
    scopes: list[str]
    facilities: list[str] = []
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyView):
    """A new key: `key` is shown this once (send it as `X-API-Key`)."""

    key: str


class ApiKeyList(BaseModel):
    """Keys, newest first."""

    items: list[ApiKeyView]


class AuditEventView(BaseModel):
    """One audited call."""

    id: int
    occurred_at: datetime
    actor: str
    actor_kind: str
    actor_key_id: str | None
    actor_roles: list[str]
    actor_facilities: list[str] = []
    action: str
    resource_type: str
    resource_id: str | None
    facility: str | None = None
    method: str
    route: str
    status_code: int
    client_ip: str | None
    user_agent: str | None


class AuditEventList(BaseModel):
    """Audit rows, newest first; page back with `before_id`."""

    items: list[AuditEventView]


class CodecPayload(BaseModel):
    """A Temporal `Payload` in protobuf JSON: metadata values and data in base64."""

    metadata: dict[str, str] = {}
    data: str = ""


class CodecPayloads(BaseModel):
    """Temporal `Payloads`, as the Temporal Web UI and CLI send them to a codec server. Protobuf JSON
    leaves out an empty list, so the `temporal` CLI sends `{}` for no payloads: a missing list is empty."""

    payloads: list[CodecPayload] = Field(default_factory=list, max_length=10_000)
