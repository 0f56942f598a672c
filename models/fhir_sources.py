"""API shapes for FHIR sources: registering a server, its sync state, and subscription registration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from models.base import OwnerFacility
from models.journey import Key, ResourceTypeName


class SourceRequest(BaseModel):
    """A FHIR server to read from. `auth` names where secrets live, never the secrets:
    `{"kind": "smart_backend", "client_id": "...", "private_key_env": "EHR_KEY", "key_id": "...",
    "algorithm": "ES384"}`, `{"kind": "client_credentials", "client_id": "...", "client_secret_env": "..."}`,
    `{"kind": "bearer", "token_env": "..."}` or `{"kind": "none"}` (`*_file` variants read a file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]
    auth: dict[str, Any] = {"kind": "none"}
    watched_types: list[ResourceTypeName] = Field(min_length=1, max_length=50)
    poll_seconds: int = Field(default=0, ge=0, le=86400)
    facility: OwnerFacility = Field(
        default=None, description="the facility every patient read from this source belongs to"
    )

    @field_validator("base_url")
    @classmethod
    def _a_usable_url(cls, value: str) -> str:
        try:
            host = httpx.URL(value).host
        except httpx.InvalidURL as error:
            raise ValueError(f"not a usable URL: {error}") from error
        if not host:
            raise ValueError("the URL names no host")
        return value


class CursorView(BaseModel):
    """How far polling has read one resource type."""

    resource_type: str
    high_water: datetime | None
    resources_seen: int
    last_run_at: datetime | None
    last_error: str | None


class SubscriptionStateView(BaseModel):
    """A topic-based subscription's progress."""

    subscription: str
    topic: str | None
    status: str | None
    last_event_number: int
    last_notification_at: datetime | None
    gaps_recovered: int


class SourceView(BaseModel):
    """A source, how it authenticates (without secrets), what it watches, and how far it is read."""

    key: str
    base_url: str
    auth: dict[str, Any]
    watched_types: list[str]
    poll_seconds: int
    facility: str | None = None
    cursors: list[CursorView] = []
    subscriptions: list[SubscriptionStateView] = []
    pending_notifications: int = 0


class SourceList(BaseModel):
    """Every source."""

    items: list[SourceView]


class PollStarted(BaseModel):
    """A polling run started (or already running)."""

    workflow_id: str


class SubscriptionRegistration(BaseModel):
    """Register subscriptions on the source for the journeys' FHIR entries (or the types given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Literal["rest-hook", "backport"] = "rest-hook"
    content: Literal["full-resource", "id-only", "empty"] = "full-resource"
    topic: Annotated[str, StringConstraints(max_length=2000)] | None = None
    resource_types: list[ResourceTypeName] | None = None


class RegisteredSubscription(BaseModel):
    """One subscription on the server."""

    resource_type: str
    subscription_id: str
    created: bool


class RegisteredSubscriptions(BaseModel):
    """What registration did, and the endpoint the server notifies."""

    endpoint: str
    items: list[RegisteredSubscription]
