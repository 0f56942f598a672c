"""Registering Subscriptions on a FHIR server so it notifies Aftercare of the resources journeys
enter on: R4 classic rest-hook subscriptions (one per resource type, full resource as payload), or R4
Backport IG topic-based ones (a topic the server offers, with a filter per resource type).

Registration is idempotent: a subscription to the same endpoint with the same criteria is updated in
place, not duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_sync.sources import DEFAULT_SOURCE
from aftercare.security.api_keys import new_source_key, revoke_api_key, revoke_source_keys
from aftercare.security.authenticate import API_KEY_HEADER
from models.journey import JourneyDefinition

Style = Literal["rest-hook", "backport"]
Content = Literal["full-resource", "id-only", "empty"]

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
REASON = "Aftercare: patient journeys start and branch on these changes"


@dataclass(frozen=True)
class Registered:
    """A subscription registered on the server for one resource type."""

    resource_type: str
    subscription_id: str
    created: bool


def notification_endpoint(public_base_url: str, source_key: str) -> str:
    """Where a source's server posts its notifications (a path, so `{endpoint}/{type}/{id}` works)."""
    base = public_base_url.rstrip("/")
    if source_key == DEFAULT_SOURCE:
        return f"{base}/v1/fhir/notifications"
    return f"{base}/v1/fhir/sources/{source_key}/notifications"


def watched_by_journeys(journeys: Iterable[JourneyDefinition]) -> list[str]:
    """The resource types journeys' FHIR entries watch, sorted."""
    return sorted(
        {journey.entry.fhir.resource for journey in journeys if journey.entry and journey.entry.fhir}
    )


def subscription_resource(
    resource_type: str,
    endpoint: str,
    *,
    style: Style = "rest-hook",
    content: Content = "full-resource",
    topic: str | None = None,
    heartbeat_seconds: int = 3600,
    headers: Sequence[str] = (),
) -> dict[str, Any]:
    """The Subscription to create for one resource type; `headers` (`Name: value`) go with every
    notification (the API key the server authenticates with)."""
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}
    if headers:
        channel["header"] = list(headers)
    subscription: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": f"{REASON} ({resource_type})",
        "channel": channel,
    }
    if style == "rest-hook":
        if content == "empty":
            del channel["payload"]
        subscription["criteria"] = f"{resource_type}?"
        return subscription
    if topic is None:
        raise ValueError("a topic-based (backport) subscription needs the topic the server offers")
    subscription["meta"] = {"profile": [f"{BACKPORT}/backport-subscription"]}
    subscription["criteria"] = topic
    subscription["_criteria"] = {
        "extension": [{"url": f"{BACKPORT}/backport-filter-criteria", "valueString": f"{resource_type}?"}]
    }
    channel["extension"] = [
        {"url": f"{BACKPORT}/backport-heartbeat-period", "valueUnsignedInt": heartbeat_seconds}
    ]
    channel["_payload"] = {
        "extension": [{"url": f"{BACKPORT}/backport-payload-content", "valueCode": content}]
    }
    return subscription


async def register_subscriptions(
    client: FhirClient,
    resource_types: Iterable[str],
    endpoint: str,
    *,
    style: Style = "rest-hook",
    content: Content = "full-resource",
    topic: str | None = None,
    headers: Sequence[str] = (),
) -> list[Registered]:
    """Create (or update) one subscription per resource type, notifying `endpoint` with `headers`."""
    existing = [resource async for resource in client.search("Subscription", [("url", endpoint)])]
    registered = []
    for resource_type in resource_types:
        wanted = subscription_resource(
            resource_type, endpoint, style=style, content=content, topic=topic, headers=headers
        )
        match = next((found for found in existing if _same(found, wanted)), None)
        if match is None:
            created = await client.create(wanted)
            registered.append(Registered(resource_type, str(created.get("id")), True))
        else:
            updated = await client.update({**wanted, "id": match["id"]})
            registered.append(Registered(resource_type, str(updated.get("id", match["id"])), False))
    return registered


def _same(found: dict[str, Any], wanted: dict[str, Any]) -> bool:
    if (found.get("channel") or {}).get("endpoint") != wanted["channel"]["endpoint"]:
        return False
    if found.get("criteria") != wanted["criteria"]:
        return False
    return _filters(found) == _filters(wanted)


def _filters(subscription: dict[str, Any]) -> list[str]:
    return [
        str(extension.get("valueString"))
        for extension in (subscription.get("_criteria") or {}).get("extension") or []
        if str(extension.get("url", "")).endswith("backport-filter-criteria")
    ]


async def register_with_key(
    client: FhirClient,
    sessions: async_sessionmaker[AsyncSession],
    source_key: str,
    resource_types: Iterable[str],
    endpoint: str,
    *,
    created_by: str | None,
    style: Style = "rest-hook",
    content: Content = "full-resource",
    topic: str | None = None,
) -> list[Registered]:
    """Register the subscriptions carrying a fresh notify-only API key in `channel.header`. The key is
    committed first (servers handshake while the subscription is being created); the source's previous
    keys are revoked once every subscription has the new one, and the new one if registering fails."""
    async with sessions.begin() as session:
        made = await new_source_key(session, source_key, created_by=created_by)
    try:
        registered = await register_subscriptions(
            client,
            resource_types,
            endpoint,
            style=style,
            content=content,
            topic=topic,
            headers=[f"{API_KEY_HEADER}: {made.secret}"],
        )
    except BaseException:
        async with sessions.begin() as session:
            await revoke_api_key(session, made.row.id)
        raise
    async with sessions.begin() as session:
        await revoke_source_keys(session, source_key, keep=made.row.id)
    return registered
