"""What a channel provider is, and which provider serves each channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from models.temporal import MessageStatus


@dataclass(frozen=True)
class OutgoingMessage:
    """A recorded send intent, as a provider sees it."""

    id: str
    channel: str
    to: str
    subject: str | None
    body: str
    html: str | None
    created_at: datetime


@dataclass(frozen=True)
class ProviderOutcome:
    """What the provider said: accepted (`queued`/`sent`) with its id, or not."""

    status: MessageStatus
    provider_message_id: str | None
    reason: str | None = None


class ProviderTemporaryError(Exception):
    """The provider could not take the message now (429, 5xx, network). Retrying may help.

    `ambiguous` means the provider may have accepted it anyway (a timeout after the request went out),
    so the next attempt must first look for it.
    """

    def __init__(self, reason: str, *, ambiguous: bool = False) -> None:
        super().__init__(reason)
        self.ambiguous = ambiguous


class ProviderRejectedError(Exception):
    """The provider refused the message for a reason retrying cannot fix (invalid number, opted out)."""


class MessageProvider(Protocol):
    """A channel provider. `external` providers get a `sending` marker and reconciliation after crashes."""

    name: str
    external: bool

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Hand the message to the provider."""
        ...

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """After an interrupted attempt: the provider's record of this message, if it has one."""
        ...


class ProviderRegistry:
    """The provider for each channel."""

    def __init__(self, by_channel: dict[str, MessageProvider], fallback: MessageProvider) -> None:
        self._by_channel = by_channel
        self._fallback = fallback

    def for_channel(self, channel: str) -> MessageProvider:
        """The configured provider, or the fallback (the outbox)."""
        return self._by_channel.get(channel, self._fallback)
