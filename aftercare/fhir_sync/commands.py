"""`aftercare subscribe`: register Subscriptions on a FHIR source for the journeys' FHIR entries, so
the server notifies Aftercare (`POST /v1/fhir/sources/{key}/subscriptions` does the same over the API)."""

from __future__ import annotations

import sys

from aftercare.db.engine import create_engine, session_factory
from aftercare.fhir_client.errors import FhirClientError, FhirConfigError
from aftercare.fhir_sync.sources import SourceMissingError, open_client
from aftercare.fhir_sync.subscriptions import Content, Style, register_with_key, watched_by_journeys
from aftercare.settings import Settings
from aftercare.store.journeys import latest_journeys


async def run_subscribe(
    settings: Settings,
    *,
    source: str,
    endpoint: str,
    style: Style,
    content: Content,
    topic: str | None,
    types: list[str] | None,
) -> int:
    """Register, print one line per subscription, and answer the exit status."""
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            wanted = types or watched_by_journeys(await latest_journeys(session))
            if not wanted:
                print("aftercare subscribe: no journey has a FHIR entry; name --type", file=sys.stderr)
                return 2
            client = await open_client(session, settings, source)
        async with client:
            registered = await register_with_key(
                client,
                sessions,
                source,
                wanted,
                endpoint,
                created_by="aftercare subscribe",
                style=style,
                content=content,
                topic=topic,
            )
    except (SourceMissingError, FhirConfigError, FhirClientError, ValueError) as error:
        print(f"aftercare subscribe: error: {error}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    for item in registered:
        action = "created" if item.created else "updated"
        print(f"{item.resource_type}: Subscription/{item.subscription_id} {action} -> {endpoint}")
    return 0
