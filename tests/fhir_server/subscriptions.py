"""Subscriptions on the test server: R4 classic rest-hook (criteria `Type?params`) and R4 Subscriptions
Backport IG topic-based ones (filter criteria extensions, `backport-payload-content`), with handshakes,
heartbeats, an event log per subscription (`$events`, `$status`) and deliveries through an injectable
`Deliver` callable. Notifications are queued when a resource is written and sent by `flush()`, in order."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import httpx

from tests.fhir_server.search import SearchError, parse_query
from tests.fhir_server.store import Store, format_instant

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_SUBSCRIPTION = f"{BACKPORT}/backport-subscription"
NOTIFICATION_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
FHIR_JSON = "application/fhir+json"

# deliver(method, url, headers, body) -> the HTTP status the endpoint answered.
Deliver = Callable[[str, str, dict[str, str], bytes], Awaitable[int]]
RestHookStyle = Literal["put-type-id", "post"]


async def http_deliver(method: str, url: str, headers: dict[str, str], body: bytes) -> int:
    """Send a notification over HTTP to the real URL."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.request(method, url, headers=headers, content=body)
        return response.status_code


def asgi_deliver(app: Any) -> Deliver:
    """A `Deliver` that hands notifications to an in-process ASGI app (whatever the URL's host)."""

    async def deliver(method: str, url: str, headers: dict[str, str], body: bytes) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, timeout=30.0) as client:
            response = await client.request(method, url, headers=headers, content=body)
            return response.status_code

    return deliver


@dataclass
class Delivery:
    """One notification the server sent (or tried to): `kind` is `handshake`, `heartbeat`,
    `event-notification` (backport) or `rest-hook` (R4 classic); `status` is the endpoint's answer, or
    None with `error` when it could not be reached."""

    subscription_id: str
    kind: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    event_numbers: list[int] = field(default_factory=list)
    status: int | None = None
    error: str | None = None

    def json(self) -> Any:
        """The body as JSON (None for an empty body)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Event:
    """A change a subscription matched: its number, when, and the resource version it was about."""

    number: int
    timestamp: str
    resource: dict[str, Any]
    created: bool

    @property
    def focus(self) -> str:
        """`Type/id` of the resource."""
        return f"{self.resource['resourceType']}/{self.resource['id']}"


@dataclass
class _State:
    events: list[Event] = field(default_factory=list)
    counter: int = 0


def is_backport(subscription: dict[str, Any]) -> bool:
    """Whether the Subscription follows the R4 Backport IG (by its profile)."""
    return BACKPORT_SUBSCRIPTION in ((subscription.get("meta") or {}).get("profile") or [])


def filter_criteria(subscription: dict[str, Any]) -> list[str]:
    """The `Type?params` criteria: the backport filter extensions, or the classic `criteria`."""
    if is_backport(subscription):
        return [
            str(extension.get("valueString"))
            for extension in (subscription.get("_criteria") or {}).get("extension") or []
            if str(extension.get("url", "")).endswith("backport-filter-criteria")
        ]
    criteria = subscription.get("criteria")
    return [criteria] if isinstance(criteria, str) else []


def payload_content(subscription: dict[str, Any]) -> str:
    """`full-resource`, `id-only` or `empty`: what a notification carries."""
    channel = subscription.get("channel") or {}
    if is_backport(subscription):
        for extension in (channel.get("_payload") or {}).get("extension") or []:
            if str(extension.get("url", "")).endswith("backport-payload-content"):
                return str(extension.get("valueCode"))
        return "id-only" if channel.get("payload") else "empty"
    return "full-resource" if channel.get("payload") else "empty"


def criteria_match(criteria: str, resource: dict[str, Any]) -> bool:
    """Whether a resource matches `Type?params` (an unreadable criterion matches nothing)."""
    resource_type, _, query_string = criteria.partition("?")
    if resource_type != resource.get("resourceType"):
        return False
    pairs = [
        (name, value) for name, _, value in (part.partition("=") for part in query_string.split("&") if part)
    ]
    try:
        return parse_query(resource_type, pairs).matches(resource)
    except SearchError:
        return False


def matches(subscription: dict[str, Any], resource: dict[str, Any]) -> bool:
    """Whether a change to the resource is an event for this subscription. A backport subscription
    without filter criteria takes every change (the test server's topics are not typed)."""
    criteria = filter_criteria(subscription)
    if not criteria:
        return is_backport(subscription)
    return any(criteria_match(criterion, resource) for criterion in criteria)


class SubscriptionHub:
    """The subscriptions' event logs and the queue of notifications to send."""

    def __init__(
        self,
        store: Store,
        base_url: Callable[[], str],
        deliver: Callable[[], Deliver],
        rest_hook_style: Callable[[], RestHookStyle],
    ) -> None:
        self.store = store
        self.deliveries: list[Delivery] = []
        self._base_url = base_url
        self._deliver = deliver
        self._style = rest_hook_style
        self._states: dict[str, _State] = {}
        self._pending: list[Callable[[], Awaitable[None]]] = []
        self._drop = 0

    def drop_next(self, count: int) -> None:
        """The next `count` events get numbers but are not delivered (gaps for the receiver to find)."""
        self._drop += count

    def state(self, subscription_id: str) -> _State:
        """The event log of a subscription."""
        return self._states.setdefault(subscription_id, _State())

    def subscription_written(self, subscription: dict[str, Any]) -> dict[str, Any]:
        """A Subscription was stored: a requested R4 classic one becomes active now; a requested backport
        one gets a handshake (queued), then becomes active (or `error` when the endpoint refuses)."""
        if subscription.get("status") != "requested":
            return subscription
        if not is_backport(subscription):
            return self.store.put({**subscription, "status": "active"})
        subscription_id = str(subscription["id"])
        self._pending.append(partial(self._handshake, subscription_id))
        return subscription

    def resource_written(self, resource: dict[str, Any], created: bool) -> None:
        """A resource was stored: log an event for every active subscription it matches, and queue the
        notifications."""
        for subscription in self.store.of_type("Subscription"):
            if subscription.get("status") != "active" or not matches(subscription, resource):
                continue
            state = self.state(str(subscription["id"]))
            state.counter += 1
            event = Event(state.counter, resource["meta"]["lastUpdated"], resource, created)
            state.events.append(event)
            if self._drop > 0:
                self._drop -= 1
                continue
            self._pending.append(partial(self._notify, subscription, event))

    async def flush(self) -> None:
        """Send every queued notification, in order."""
        while self._pending:
            await self._pending.pop(0)()

    async def heartbeat(self, subscription_id: str) -> Delivery:
        """Send a heartbeat notification now."""
        subscription = self._subscription(subscription_id)
        bundle = self.notification(subscription, "heartbeat", [])
        return await self._send(subscription, "heartbeat", "POST", _endpoint(subscription), bundle, [])

    def notification(
        self, subscription: dict[str, Any], kind: str, events: list[Event], content: str | None = None
    ) -> dict[str, Any]:
        """A backport R4 notification Bundle (`history`, a status `Parameters` first)."""
        base = self._base_url()
        content = content or payload_content(subscription)
        subscription_id = str(subscription["id"])
        status_id = str(uuid.uuid4())
        entries: list[dict[str, Any]] = [
            {
                "fullUrl": f"urn:uuid:{status_id}",
                "resource": self.status_parameters(subscription, kind, events, content, status_id),
                "request": {"method": "GET", "url": f"{base}/Subscription/{subscription_id}/$status"},
                "response": {"status": "200"},
            }
        ]
        if content != "empty":
            for event in events:
                entry: dict[str, Any] = {"fullUrl": f"{base}/{event.focus}"}
                if content == "full-resource":
                    entry["resource"] = event.resource
                entry["request"] = {
                    "method": "POST" if event.created else "PUT",
                    "url": event.resource["resourceType"] if event.created else event.focus,
                }
                entry["response"] = {"status": "201" if event.created else "200"}
                entries.append(entry)
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"profile": [NOTIFICATION_PROFILE]},
            "type": "history",
            "timestamp": format_instant(self.store.next_instant()),
            "entry": entries,
        }

    def status_parameters(
        self,
        subscription: dict[str, Any],
        kind: str,
        events: list[Event],
        content: str | None = None,
        status_id: str | None = None,
    ) -> dict[str, Any]:
        """The backport SubscriptionStatus (a `Parameters` resource) for a notification of `kind`."""
        base = self._base_url()
        content = content or payload_content(subscription)
        state = self.state(str(subscription["id"]))
        parameters: list[dict[str, Any]] = [
            {
                "name": "subscription",
                "valueReference": {"reference": f"{base}/Subscription/{subscription['id']}"},
            },
            {"name": "topic", "valueCanonical": str(subscription.get("criteria") or "")},
            {"name": "status", "valueCode": str(subscription.get("status"))},
            {"name": "type", "valueCode": kind},
            {"name": "events-since-subscription-start", "valueString": str(state.counter)},
        ]
        for event in events:
            parts: list[dict[str, Any]] = [
                {"name": "event-number", "valueString": str(event.number)},
                {"name": "timestamp", "valueInstant": event.timestamp},
            ]
            if content != "empty":
                parts.append({"name": "focus", "valueReference": {"reference": f"{base}/{event.focus}"}})
            parameters.append({"name": "notification-event", "part": parts})
        return {
            "resourceType": "Parameters",
            "id": status_id or str(uuid.uuid4()),
            "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters,
        }

    def events_bundle(self, subscription_id: str, since: int | None, until: int | None) -> dict[str, Any]:
        """`$events`: the logged events in [since, until] with their resources (`query-event`)."""
        subscription = self._subscription(subscription_id)
        events = [
            event
            for event in self.state(subscription_id).events
            if (since is None or event.number >= since) and (until is None or event.number <= until)
        ]
        return self.notification(subscription, "query-event", events, "full-resource")

    def status_bundle(self, subscription_id: str) -> dict[str, Any]:
        """`$status`: a searchset Bundle holding the subscription's status (`query-status`)."""
        subscription = self._subscription(subscription_id)
        status = self.status_parameters(subscription, "query-status", [])
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 1,
            "entry": [
                {"fullUrl": f"urn:uuid:{status['id']}", "resource": status, "search": {"mode": "match"}}
            ],
        }

    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        subscription = self.store.get("Subscription", subscription_id)
        if subscription is None:
            raise KeyError(f"Subscription/{subscription_id}")
        return subscription

    async def _handshake(self, subscription_id: str) -> None:
        subscription = self.store.get("Subscription", subscription_id)
        if subscription is None or subscription.get("status") != "requested":
            return
        bundle = self.notification(subscription, "handshake", [])
        delivery = await self._send(subscription, "handshake", "POST", _endpoint(subscription), bundle, [])
        ok = delivery.status is not None and 200 <= delivery.status < 300
        self.store.put({**subscription, "status": "active" if ok else "error"})

    async def _notify(self, subscription: dict[str, Any], event: Event) -> None:
        current = self.store.get("Subscription", str(subscription["id"])) or subscription
        if current.get("status") != "active":
            return
        endpoint = _endpoint(current)
        if is_backport(current):
            bundle = self.notification(current, "event-notification", [event])
            await self._send(current, "event-notification", "POST", endpoint, bundle, [event.number])
        elif payload_content(current) == "empty":
            await self._send(current, "rest-hook", "POST", endpoint, None, [event.number])
        elif self._style() == "post":
            await self._send(current, "rest-hook", "POST", endpoint, event.resource, [event.number])
        else:
            url = f"{endpoint.rstrip('/')}/{event.focus}"
            await self._send(current, "rest-hook", "PUT", url, event.resource, [event.number])

    async def _send(
        self,
        subscription: dict[str, Any],
        kind: str,
        method: str,
        url: str,
        document: dict[str, Any] | None,
        numbers: list[int],
    ) -> Delivery:
        headers = _channel_headers(subscription)
        if document is not None:
            headers["Content-Type"] = FHIR_JSON
        body = json.dumps(document).encode() if document is not None else b""
        delivery = Delivery(str(subscription["id"]), kind, method, url, headers, body, numbers)
        self.deliveries.append(delivery)
        try:
            delivery.status = await self._deliver()(method, url, headers, body)
        except Exception as error:  # an unreachable endpoint is recorded, not raised
            delivery.error = f"{type(error).__name__}: {error}"
        return delivery


def _endpoint(subscription: dict[str, Any]) -> str:
    return str((subscription.get("channel") or {}).get("endpoint") or "")


def _channel_headers(subscription: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for header in (subscription.get("channel") or {}).get("header") or []:
        name, _, value = str(header).partition(":")
        if name.strip():
            headers[name.strip()] = value.strip()
    return headers
