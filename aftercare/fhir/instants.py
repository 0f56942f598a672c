"""FHIR `instant` values (`meta.lastUpdated`, `transactionTime`) as datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_instant(value: Any) -> datetime | None:
    """The instant (`2024-05-01T10:00:00Z`, `...+02:00`) as an aware datetime (UTC when the server left
    the zone out); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def last_updated_of(resource: dict[str, Any]) -> datetime | None:
    """The resource's `meta.lastUpdated`."""
    return parse_instant((resource.get("meta") or {}).get("lastUpdated"))
