"""What a channel provider is, and which provider serves each channel."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from aftercare.fhir_client.retry import retry_after_seconds as http_retry_after
from models.temporal import MessageStatus

# A provider's `Retry-After` is honoured up to an hour.
MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class OutgoingMessage:
    """A recorded send intent, as a provider sees it."""

    id: str
    patient_id: str
    channel: str
    to: str
    subject: str | None
    body: str
    html: str | None
    locale: str | None
    created_at: datetime
    # When the interrupted attempt began, and the provider ids other messages to the same address own:
    # a lookup may only claim a provider message created since, and never one of those.
    attempted_at: datetime | None = None
    owned_elsewhere: frozenset[str] = frozenset()
    # Who it comes from: the facility's SMS number or messaging service, or email address (None: the
    # provider's configured sender).
    sender: str | None = None
    # Extra email headers (`List-Unsubscribe`, `List-Unsubscribe-Post`); None for none.
    headers: dict[str, str] | None = None
    # The facility it is sent on behalf of (its letterhead heads a letter).
    facility: str | None = None
    # Files an email carries: `{filename, content_type, content}` (content base64).
    attachments: tuple[dict[str, str], ...] = ()

    @property
    def looked_up_since(self) -> datetime:
        """The earliest moment a provider message can be this attempt's (the provider's clock counts
        whole seconds)."""
        return (self.attempted_at or self.created_at).replace(microsecond=0)


@dataclass(frozen=True)
class ProviderOutcome:
    """What the provider said: accepted (`queued`/`sent`) with its id, or not (and whether the address
    must be suppressed)."""

    status: MessageStatus
    provider_message_id: str | None
    reason: str | None = None
    suppress: str | None = None


class ProviderTemporaryError(Exception):
    """The provider could not take the message now (429, 5xx, network). Retrying may help.

    `ambiguous` means the provider may have accepted it anyway (a timeout after the request went out),
    so the next attempt must first look for it.
    """

    def __init__(self, reason: str, *, ambiguous: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.ambiguous = ambiguous
        self.retry_after = retry_after


class ProviderRejectedError(Exception):
    """The provider refused the message for a reason retrying cannot fix (invalid number, opted out).

    `suppress` names why the address itself must not be used again (`invalid`, `stop`, `landline`).
    """

    def __init__(self, reason: str, *, suppress: str | None = None) -> None:
        super().__init__(reason)
        self.suppress = suppress


class MessageProvider(Protocol):
    """A channel provider. `external` providers get a `sending` marker and reconciliation after crashes."""

    name: str
    external: bool

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Hand the message to the provider."""
        ...

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """After an interrupted attempt: the provider's record of this message, if it has one. Only a
        provider message created since `message.looked_up_since` and not in `message.owned_elsewhere`
        may be claimed; better still, one that carries the message id."""
        ...


@runtime_checkable
class BatchingProvider(MessageProvider, Protocol):
    """A provider that can take many messages in one call (SendGrid: one personalization each)."""

    max_batch: int

    def batch_key(self, message: OutgoingMessage) -> Hashable | None:
        """Messages with equal keys may share a call; None: this one goes alone."""
        ...

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[ProviderOutcome]:
        """Hand the messages over in one call: an outcome each, or an error for them all."""
        ...


@dataclass(frozen=True)
class RateLimit:
    """A provider's limit: its sends wait on `queue`, which the Temporal server paces, and each call
    takes its turn at least `1 / per_second` seconds after the previous one, across every worker."""

    queue: str
    per_second: float


class ProviderRegistry:
    """The provider for each channel, and the limit of each rate-limited provider."""

    def __init__(
        self,
        by_channel: dict[str, MessageProvider],
        fallback: MessageProvider,
        rate_limits: dict[str, RateLimit] | None = None,
    ) -> None:
        self._by_channel = by_channel
        self._fallback = fallback
        self._limits = rate_limits or {}

    def for_channel(self, channel: str) -> MessageProvider:
        """The configured provider, or the fallback (the outbox)."""
        return self._by_channel.get(channel, self._fallback)

    def rate_limit(self, provider: MessageProvider) -> RateLimit | None:
        """The provider's limit, if it has one (only providers with an external side effect do)."""
        return self._limits.get(provider.name) if provider.external else None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) as seconds from now, at most an hour."""
    seconds = http_retry_after(value, now)
    return min(seconds, MAX_RETRY_AFTER_SECONDS) if seconds is not None else None
