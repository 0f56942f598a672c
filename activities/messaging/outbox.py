"""The outbox provider: the message is recorded in the database and nothing leaves the building.

It is the default when no provider is configured, and what development and demos use.
"""

from __future__ import annotations

from activities.messaging.providers import OutgoingMessage, ProviderOutcome


class OutboxProvider:
    """Records messages as `sent`; there is no external side effect, so no reconciliation is needed."""

    name = "outbox"
    external = False

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Accept the message."""
        return ProviderOutcome(status="sent", provider_message_id=f"outbox-{message.id}")

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """Nothing external to look in."""
        return None
