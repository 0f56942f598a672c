"""Subscription notifications in every standard shape, read into one form.

* R4 rest-hook: the changed resource as the body (or a Bundle of them), or an empty POST (a "ping")
  that says only that something changed, optionally naming it with `?resource=Type/id`;
* topic-based notification Bundles: R5 (`subscription-notification`, a `SubscriptionStatus` first),
  R4B and the R4 Subscriptions Backport IG (`history` Bundles whose first entry is a `SubscriptionStatus`
  or a backport status `Parameters`), with `full-resource`, `id-only` or `empty` content, and the
  `handshake`, `heartbeat`, `event-notification`, `query-status` and `query-event` types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Shape = Literal["resources", "ping", "topic"]
Content = Literal["full-resource", "id-only", "empty"]

_STATUS_PROFILE = "backport-subscription-status-r4"


class NotificationError(ValueError):
    """A body that claims to be a notification but cannot be read as one."""


@dataclass(frozen=True)
class NotificationEvent:
    """One event of a topic-based notification: its number and the resource it is about (if said)."""

    number: int | None
    timestamp: str | None
    focus: str | None


@dataclass(frozen=True)
class Notification:
    """A notification read into one form, whatever its shape."""

    shape: Shape
    kind: str | None = None
    subscription: str | None = None
    topic: str | None = None
    status: str | None = None
    events_since_start: int | None = None
    events: list[NotificationEvent] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    @property
    def content(self) -> Content | None:
        """What the notification carries: the resources, only their ids, or nothing."""
        if self.shape != "topic" or self.kind not in ("event-notification", "query-event"):
            return None
        if self.resources:
            return "full-resource"
        return "id-only" if self.references else "empty"

    @property
    def event_numbers(self) -> list[int]:
        """The numbers of the events carried, in order."""
        return [event.number for event in self.events if event.number is not None]


def is_topic_bundle(document: Any) -> bool:
    """True for a topic-based notification Bundle (R4 backport, R4B or R5)."""
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        return False
    if document.get("type") not in ("history", "subscription-notification"):
        return False
    entries = document.get("entry") or []
    first = (entries[0].get("resource") if entries and isinstance(entries[0], dict) else None) or {}
    return first.get("resourceType") == "SubscriptionStatus" or _is_backport_status(first)


def ping(references: list[str]) -> Notification:
    """An empty rest-hook POST; `references` are the `?resource=` query values, if any."""
    return Notification(shape="ping", kind="event-notification", references=references)


def read_topic_bundle(bundle: dict[str, Any]) -> Notification:
    """Read a topic-based notification Bundle; raises `NotificationError` when its status is unreadable."""
    entries = [entry for entry in bundle.get("entry") or [] if isinstance(entry, dict)]
    status_resource = entries[0].get("resource") or {}
    if status_resource.get("resourceType") == "SubscriptionStatus":
        status = _from_subscription_status(status_resource)
    else:
        status = _from_backport_parameters(status_resource)
    resources: list[dict[str, Any]] = []
    listed: list[str] = []
    for entry in entries[1:]:
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType"):
            resources.append(resource)
        elif isinstance(entry.get("fullUrl"), str):
            listed.append(entry["fullUrl"])
    focuses = [event.focus for event in status["events"] if event.focus]
    have = {f"{resource['resourceType']}/{resource.get('id')}" for resource in resources}
    references = [
        reference
        for reference in dict.fromkeys([*listed, *focuses])
        if relative_reference(reference) not in have
    ]
    return Notification(shape="topic", resources=resources, references=references, **status)


def relative_reference(reference: str) -> str:
    """`Type/id` from an absolute or relative reference (`https://x/fhir/Encounter/1/_history/2` too)."""
    parts = [part for part in reference.split("?")[0].split("/") if part]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


def _from_subscription_status(resource: dict[str, Any]) -> dict[str, Any]:
    events = [
        NotificationEvent(
            number=_integer(event.get("eventNumber")),
            timestamp=event.get("timestamp"),
            focus=(event.get("focus") or {}).get("reference"),
        )
        for event in resource.get("notificationEvent") or []
        if isinstance(event, dict)
    ]
    return {
        "kind": resource.get("type"),
        "subscription": (resource.get("subscription") or {}).get("reference"),
        "topic": resource.get("topic"),
        "status": resource.get("status"),
        "events_since_start": _integer(resource.get("eventsSinceSubscriptionStart")),
        "events": events,
    }


def _from_backport_parameters(resource: dict[str, Any]) -> dict[str, Any]:
    if not _is_backport_status(resource):
        raise NotificationError("the notification's first entry is not a subscription status")
    values: dict[str, Any] = {}
    events: list[NotificationEvent] = []
    for parameter in resource.get("parameter") or []:
        name = parameter.get("name")
        if name == "notification-event":
            parts = {part.get("name"): part for part in parameter.get("part") or []}
            events.append(
                NotificationEvent(
                    number=_integer(_value(parts.get("event-number"))),
                    timestamp=_value(parts.get("timestamp")),
                    focus=(_value(parts.get("focus")) or {}).get("reference")
                    if isinstance(_value(parts.get("focus")), dict)
                    else None,
                )
            )
        else:
            values[name] = _value(parameter)
    subscription = values.get("subscription")
    return {
        "kind": values.get("type"),
        "subscription": subscription.get("reference") if isinstance(subscription, dict) else None,
        "topic": values.get("topic"),
        "status": values.get("status"),
        "events_since_start": _integer(values.get("events-since-subscription-start")),
        "events": events,
    }


def _is_backport_status(resource: dict[str, Any]) -> bool:
    if resource.get("resourceType") != "Parameters":
        return False
    profiles = (resource.get("meta") or {}).get("profile") or []
    names = {parameter.get("name") for parameter in resource.get("parameter") or []}
    return any(_STATUS_PROFILE in profile for profile in profiles) or {"subscription", "type"} <= names


def _value(parameter: dict[str, Any] | None) -> Any:
    if not parameter:
        return None
    return next((value for key, value in parameter.items() if key.startswith("value")), None)


def _integer(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
