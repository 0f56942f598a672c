"""Web Push notifications to each device a patient subscribed, with `pywebpush`: RFC 8030 delivery,
RFC 8291 encryption (aes128gcm) and RFC 8292 VAPID signatures.

Each device gets a message once. As soon as a push service accepts a device's copy, a `MessageEvent`
(`webpush`, "<message id>:<subscription id>", `sent`) is committed, and every later attempt skips the
devices already recorded (`find_sent` has nothing to look up). A repeated push also carries the same
`Topic`, so the push service replaces a copy it has not delivered yet instead of showing two.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import requests
from py_vapid import Vapid, VapidException
from pywebpush import WebPushException, webpush
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderRejectedError,
    ProviderTemporaryError,
    retry_after_seconds,
)
from aftercare.push_keys import load_vapid_private_key
from aftercare.store.message_events import ProviderEvent, apply_provider_event, events_of
from aftercare.store.push_subscriptions import delete_subscription, subscriptions_of
from models.push import encode_base64url

log = logging.getLogger(__name__)

PROVIDER_NAME = "webpush"
DEFAULT_TITLE = "Aftercare"
# RFC 8291 §4: a 4096-byte push message minus the aes128gcm header (86), the tag (16) and the delimiter.
MAX_PLAINTEXT_BYTES = 3993
TOPIC_LENGTH = 32
GONE_STATUSES = frozenset({404, 410})

DeviceOutcome = Literal["sent", "expired", "failed", "unavailable"]
_RECORDED: dict[str, DeviceOutcome] = {"sent": "sent", "expired": "expired", "failed": "failed"}


@dataclass(frozen=True)
class _Device:
    id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class _Result:
    outcome: DeviceOutcome
    detail: str
    retry_after: float | None = None
    ambiguous: bool = False


def topic_for(message_id: str) -> str:
    """The `Topic` header of a message: 32 base64url characters derived from its id (RFC 8030 §5.4)."""
    return encode_base64url(hashlib.sha256(message_id.encode()).digest())[:TOPIC_LENGTH]


def notification_payload(title: str, body: str, message_id: str) -> str:
    """The JSON the service worker receives: title, body and message id, nothing else about the patient.

    A body too long for one push message (RFC 8291 allows 3993 bytes of plaintext) is shortened, ending
    in an ellipsis.
    """

    def encoded(text: str) -> str:
        return json.dumps(
            {"title": title, "body": text, "message_id": message_id},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    payload = encoded(body)
    while len(payload.encode()) > MAX_PLAINTEXT_BYTES and body:
        excess = len(payload.encode()) - MAX_PLAINTEXT_BYTES
        body = body[: max(0, len(body) - excess - 1)].rstrip()
        payload = encoded(body + "…")
    if len(payload.encode()) > MAX_PLAINTEXT_BYTES:
        raise ProviderRejectedError("the notification title is too long for a push message")
    return payload


class WebPushProvider:
    """Pushes a message to every subscription of the patient; records each device that accepted it."""

    name = PROVIDER_NAME
    external = True

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vapid_private_key: str,
        vapid_subject: str,
        ttl_seconds: int = 86400,
        timeout_seconds: float = 15,
        *,
        default_title: str = DEFAULT_TITLE,
    ) -> None:
        self._sessions = sessions
        self._vapid = Vapid(load_vapid_private_key(vapid_private_key))
        try:
            self._vapid.sign({"sub": vapid_subject, "aud": "https://push.example"})
        except VapidException as error:
            raise ValueError("the VAPID subject must be a mailto: address or an https: URL") from error
        self._subject = vapid_subject
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._default_title = default_title
        # requests sessions are not shared between threads; each worker thread keeps its own connections.
        self._local = threading.local()

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Push to each subscribed device not reached yet; temporary failures are retried later."""
        async with self._sessions() as session:
            subscriptions = [
                _Device(row.id, row.endpoint, row.p256dh, row.auth)
                for row in await subscriptions_of(session, message.patient_id)
            ]
            earlier = await self._earlier_outcomes(session, message.id)
        if not subscriptions and not earlier:
            raise ProviderRejectedError("the patient has no device subscribed to push notifications")
        title = message.subject or message.sender or self._default_title  # the sender: the facility's app
        payload = notification_payload(title, message.body, message.id)
        topic = topic_for(message.id)
        now: dict[str, _Result] = {}
        for device in subscriptions:
            if device.id in earlier:
                continue
            started = time.perf_counter()
            result = await asyncio.to_thread(self._push, device, payload, topic)
            log.debug(
                "push %s",
                result.outcome,
                extra={
                    "message_id": message.id,
                    "subscription_id": device.id,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            if result.outcome != "unavailable":
                await self._record(message.id, device.id, result)
            now[device.id] = result
        return self._outcome(message, earlier, now)

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """Nothing to look up: `send` skips the devices already reached."""
        return None

    def _outcome(
        self, message: OutgoingMessage, earlier: dict[str, _Result], now: dict[str, _Result]
    ) -> ProviderOutcome:
        every = {**earlier, **now}
        reached = sum(result.outcome == "sent" for result in every.values())
        counted = f"{reached} of {len(every)} device{'s' if len(every) != 1 else ''}"
        waiting = [result for result in now.values() if result.outcome == "unavailable"]
        if waiting:
            delays = [result.retry_after for result in waiting if result.retry_after is not None]
            raise ProviderTemporaryError(
                f"{len(waiting)} device(s) could not be reached now ({_details(waiting)}); "
                f"{counted} reached so far",
                ambiguous=any(result.ambiguous for result in waiting),
                retry_after=max(delays) if delays else None,
            )
        missed = [result for result in every.values() if result.outcome != "sent"]
        log.info(
            "push finished",
            extra={"message_id": message.id, "devices": len(every), "reached": reached},
        )
        if reached:
            reason = counted + (f"; {_details(missed)}" if missed else "")
            return ProviderOutcome("sent", f"webpush-{message.id}", reason=reason)
        return ProviderOutcome(
            "failed", None, reason=f"no device accepted the notification: {_details(missed)}"
        )

    async def _earlier_outcomes(self, session: AsyncSession, message_id: str) -> dict[str, _Result]:
        prefix = f"{message_id}:"
        outcomes: dict[str, _Result] = {}
        for event in await events_of(session, message_id):
            if event.provider == PROVIDER_NAME and event.provider_event_id.startswith(prefix):
                subscription_id = event.provider_event_id.removeprefix(prefix).split(":", 1)[0]
                outcome = _RECORDED.get(event.event)
                if outcome is not None:
                    outcomes[subscription_id] = _Result(outcome, event.detail or event.event)
        return outcomes

    async def _record(self, message_id: str, subscription_id: str, result: _Result) -> None:
        event_id = f"{message_id}:{subscription_id}"
        if result.outcome != "sent":
            event_id += f":{result.outcome}"
        async with self._sessions.begin() as session:
            await apply_provider_event(
                session,
                message_id,
                ProviderEvent(
                    provider=PROVIDER_NAME,
                    event_id=event_id,
                    event=result.outcome,
                    occurred_at=datetime.now(UTC),
                    detail=result.detail,
                ),
            )
            if result.outcome == "expired":
                await delete_subscription(session, subscription_id)
        if result.outcome == "expired":
            log.info(
                "push subscription expired and was removed",
                extra={"message_id": message_id, "subscription_id": subscription_id},
            )

    def _push(self, device: _Device, payload: str, topic: str) -> _Result:
        try:
            response = webpush(
                subscription_info={
                    "endpoint": device.endpoint,
                    "keys": {"p256dh": device.p256dh, "auth": device.auth},
                },
                data=payload,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},
                content_encoding="aes128gcm",
                timeout=self._timeout,
                ttl=self._ttl,
                headers={"Urgency": "normal", "Topic": topic},
                requests_session=self._http(),
            )
        except WebPushException as error:
            return _refusal(error)
        except requests.Timeout:
            return _Result("unavailable", "the push service did not answer in time", ambiguous=True)
        except requests.RequestException as error:
            return _Result("unavailable", f"the push service could not be reached ({type(error).__name__})")
        except ValueError:
            return _Result("failed", "the subscription's keys cannot be used for encryption")
        except VapidException:
            return _Result("failed", "the endpoint's origin cannot be named in a VAPID signature")
        return _Result("sent", f"accepted by the push service (HTTP {response.status_code})")

    def _http(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session


def _refusal(error: WebPushException) -> _Result:
    status = error.status_code
    if status is None:
        return _Result("failed", "the subscription cannot be used (its keys are invalid)")
    answered = f"HTTP {status}"
    if status in GONE_STATUSES:
        return _Result("expired", f"the push service answered {answered}: subscription expired, removed")
    if status == 429 or status >= 500:
        return _Result(
            "unavailable", f"the push service answered {answered}", retry_after_seconds(error.retry_after)
        )
    hint = " (VAPID signature or key refused)" if status in (401, 403) else ""
    return _Result("failed", f"the push service refused the notification: {answered}{hint}")


def _details(results: list[_Result]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.detail] = counts.get(result.detail, 0) + 1
    return "; ".join(detail if n == 1 else f"{n} devices: {detail}" for detail, n in counts.items())
