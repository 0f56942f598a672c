"""The Web Push provider against a real (local) push service: each subscribed device gets the notification
once, encrypted so only that browser reads it (RFC 8291) and signed with our VAPID key (RFC 8292).

The push service is an HTTP server in this process that records every request and answers 201, or
whatever a test asks of an endpoint. Each "browser" makes its key pair and auth secret as a real one
does and decrypts what the push service received.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import (
    OutgoingMessage,
    ProviderRegistry,
    ProviderRejectedError,
    ProviderTemporaryError,
)
from activities.messaging.send import MessagingActivities
from activities.messaging.web_push import (
    MAX_PLAINTEXT_BYTES,
    WebPushProvider,
    notification_payload,
    retry_after_seconds,
    topic_for,
)
from aftercare.facilities.voice import Voice
from aftercare.store.messages import record_intent
from aftercare.store.push_subscriptions import save_subscription, subscriptions_of
from models.journey import SendSpec
from models.tables import Message, MessageEvent
from models.temporal import SendMessageInput
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient, send_request
from tests.local_services import Browser, PushService, b64url, running_push_service, unb64url

pytestmark = pytest.mark.usefixtures("empty_database")

SUBJECT = "mailto:outreach@hospital.example"


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with running_push_service() as service:
        yield service


@dataclass(frozen=True)
class VapidKeys:
    private: str
    public: str


@pytest.fixture
def vapid() -> VapidKeys:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(
        private=b64url(key.private_numbers().private_value.to_bytes(32, "big")), public=b64url(public)
    )


@pytest.fixture
def provider(sessions: async_sessionmaker[AsyncSession], vapid: VapidKeys) -> WebPushProvider:
    return WebPushProvider(sessions, vapid.private, SUBJECT, ttl_seconds=3600, timeout_seconds=5)


async def subscribe(
    sessions: async_sessionmaker[AsyncSession], service: PushService, device: str, browser: Browser
) -> str:
    async with sessions.begin() as session:
        row = await save_subscription(
            session, ABDUL_PATIENT_ID, service.endpoint(device), browser.p256dh, browser.auth, device
        )
    return row.id


async def message(
    sessions: async_sessionmaker[AsyncSession],
    body: str = "Time to check in",
    subject: str | None = "Check-in",
) -> OutgoingMessage:
    """A recorded push intent (events reference it), as the send activity hands it to the provider."""
    message_id = str(uuid.uuid4())
    async with sessions.begin() as session:
        row = await record_intent(
            session,
            {
                "id": message_id,
                "idempotency_key": f"test/{message_id}",
                "patient_id": ABDUL_PATIENT_ID,
                "channel": "push",
                "to": "2 devices",
                "subject": subject,
                "body": body,
                "status": "sending",
            },
        )
    return OutgoingMessage(
        id=row.id,
        patient_id=row.patient_id,
        channel=row.channel,
        to=row.to or "",
        subject=row.subject,
        body=row.body or "",
        html=None,
        locale=None,
        created_at=row.created_at,
    )


async def events(sessions: async_sessionmaker[AsyncSession], message_id: str) -> set[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.scalars(select(MessageEvent).where(MessageEvent.message_id == message_id))
        return {(row.provider_event_id, row.event) for row in rows if row.provider == "webpush"}


async def subscription_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        return {row.id for row in await subscriptions_of(session, ABDUL_PATIENT_ID)}


def verify_vapid(authorization: str, public_key: str, audience: str) -> dict[str, Any]:
    """Check the RFC 8292 header as a push service does; returns the JWT claims."""
    scheme, _, parameters = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in parameters.split(","))
    assert fields["k"] == public_key
    header, claims, signature = fields["t"].split(".")
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    assert len(raw) == 64
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    key.verify(  # raises InvalidSignature unless our private key signed exactly these claims
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        f"{header}.{claims}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    decoded: dict[str, Any] = json.loads(unb64url(claims))
    assert decoded["aud"] == audience
    assert decoded["sub"] == SUBJECT
    assert time.time() < decoded["exp"] <= time.time() + 24 * 3600
    return decoded


async def test_every_device_gets_a_notification_only_it_can_read_signed_with_our_vapid_key(
    sessions: async_sessionmaker[AsyncSession],
    push_service: PushService,
    provider: WebPushProvider,
    vapid: VapidKeys,
) -> None:
    phone, laptop = Browser(), Browser()
    phone_id = await subscribe(sessions, push_service, "phone", phone)
    laptop_id = await subscribe(sessions, push_service, "laptop", laptop)
    outgoing = await message(sessions)

    outcome = await provider.send(outgoing)

    assert (outcome.status, outcome.provider_message_id) == ("sent", f"webpush-{outgoing.id}")
    assert outcome.reason == "2 of 2 devices"
    [to_phone] = push_service.received("phone")
    [to_laptop] = push_service.received("laptop")
    expected = {"title": "Check-in", "body": "Time to check in", "message_id": outgoing.id}
    assert phone.read(to_phone) == expected
    assert laptop.read(to_laptop) == expected
    with pytest.raises(http_ece.ECEException):
        laptop.read(to_phone)
    for request in (to_phone, to_laptop):
        verify_vapid(request.headers["authorization"], vapid.public, push_service.origin)
        assert request.headers["content-encoding"] == "aes128gcm"
        assert request.headers["ttl"] == "3600"
        assert request.headers["urgency"] == "normal"
        assert request.headers["topic"] == topic_for(outgoing.id)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", request.headers["topic"])
        assert len(request.body) <= 4096
    assert await events(sessions, outgoing.id) == {
        (f"{outgoing.id}:{phone_id}", "sent"),
        (f"{outgoing.id}:{laptop_id}", "sent"),
    }


NORTH = Voice(
    facility="north", timezone="UTC", quiet_hours=None, senders={"push_app": "North Care"}, help_phone=None
)
PLAIN = Voice(facility="plain", timezone="UTC", quiet_hours=None, senders={}, help_phone=None)


@pytest.mark.parametrize(
    ("voice", "title"),
    [(None, "Springfield General"), (PLAIN, "Springfield General"), (NORTH, "North Care")],
    ids=["no facility", "a facility without an app", "a facility's push app"],
)
async def test_without_a_subject_the_title_is_the_facility_s_push_app_else_the_default_title(
    sessions: async_sessionmaker[AsyncSession],
    push_service: PushService,
    vapid: VapidKeys,
    voice: Voice | None,
    title: str,
) -> None:
    provider = WebPushProvider(sessions, vapid.private, SUBJECT, default_title="Springfield General")
    phone = Browser()
    await subscribe(sessions, push_service, "phone", phone)

    sender = voice.sender("push") if voice else None
    await provider.send(dataclasses.replace(await message(sessions, subject=None), sender=sender))

    [request] = push_service.received("phone")
    assert phone.read(request)["title"] == title


async def test_a_repeated_send_pushes_only_to_the_devices_not_reached_yet(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    # A worker pushed to the phone, recorded it, and died before the tablet: the same state as a first
    # attempt made before the tablet subscribed.
    phone, tablet = Browser(), Browser()
    await subscribe(sessions, push_service, "phone", phone)
    outgoing = await message(sessions)
    await provider.send(outgoing)
    await subscribe(sessions, push_service, "tablet", tablet)

    outcome = await provider.send(outgoing)

    assert len(push_service.received("phone")) == 1
    [to_tablet] = push_service.received("tablet")
    assert tablet.read(to_tablet)["message_id"] == outgoing.id
    assert to_tablet.headers["topic"] == push_service.received("phone")[0].headers["topic"]
    assert (outcome.status, outcome.reason) == ("sent", "2 of 2 devices")
    again = await provider.send(outgoing)
    assert len(push_service.requests) == 2
    assert again.status == "sent"


async def test_different_messages_have_different_topics(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    await subscribe(sessions, push_service, "phone", Browser())
    await provider.send(await message(sessions))
    await provider.send(await message(sessions))

    first, second = push_service.received("phone")
    assert first.headers["topic"] != second.headers["topic"]


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_subscription_is_deleted_and_the_reachable_devices_still_get_it(
    sessions: async_sessionmaker[AsyncSession],
    push_service: PushService,
    provider: WebPushProvider,
    status: int,
) -> None:
    old_id = await subscribe(sessions, push_service, "old-laptop", Browser())
    phone_id = await subscribe(sessions, push_service, "phone", Browser())
    push_service.answer("old-laptop", (status, {}))
    outgoing = await message(sessions)

    outcome = await provider.send(outgoing)

    assert outcome.status == "sent"
    assert outcome.reason is not None
    assert outcome.reason.startswith("1 of 2 devices")
    assert f"HTTP {status}" in outcome.reason
    assert await subscription_ids(sessions) == {phone_id}
    assert await events(sessions, outgoing.id) == {
        (f"{outgoing.id}:{old_id}:expired", "expired"),
        (f"{outgoing.id}:{phone_id}", "sent"),
    }


async def test_when_every_subscription_has_expired_the_message_fails_and_they_are_all_removed(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    await subscribe(sessions, push_service, "old-laptop", Browser())
    push_service.answer("old-laptop", (410, {}))
    outgoing = await message(sessions)

    outcome = await provider.send(outgoing)

    assert (outcome.status, outcome.provider_message_id) == ("failed", None)
    assert outcome.reason is not None
    assert outcome.reason.startswith("no device accepted the notification")
    assert await subscription_ids(sessions) == set()
    # A retry of the same message does not count as "no devices": it was tried, and failed.
    assert (await provider.send(outgoing)).status == "failed"


async def test_a_rate_limited_device_is_retried_later_without_pushing_again_to_the_others(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    phone, tablet = Browser(), Browser()
    phone_id = await subscribe(sessions, push_service, "phone", phone)
    tablet_id = await subscribe(sessions, push_service, "tablet", tablet)
    push_service.answer("phone", (429, {"Retry-After": "120"}))
    outgoing = await message(sessions)

    with pytest.raises(ProviderTemporaryError) as raised:
        await provider.send(outgoing)

    assert raised.value.retry_after == 120
    assert not raised.value.ambiguous
    assert "HTTP 429" in str(raised.value)
    assert "1 of 2 devices reached so far" in str(raised.value)
    assert await events(sessions, outgoing.id) == {(f"{outgoing.id}:{tablet_id}", "sent")}

    outcome = await provider.send(outgoing)

    assert (outcome.status, outcome.reason) == ("sent", "2 of 2 devices")
    assert len(push_service.received("tablet")) == 1
    assert [phone.read(request)["body"] for request in push_service.received("phone")] == [
        "Time to check in",
        "Time to check in",
    ]
    assert (f"{outgoing.id}:{phone_id}", "sent") in await events(sessions, outgoing.id)


async def test_a_push_service_error_is_temporary_and_honours_an_http_date_retry_after(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    await subscribe(sessions, push_service, "phone", Browser())
    later = datetime.now(UTC) + timedelta(seconds=90)
    push_service.answer("phone", (503, {"Retry-After": format_datetime(later, usegmt=True)}))

    with pytest.raises(ProviderTemporaryError) as raised:
        await provider.send(await message(sessions))

    assert raised.value.retry_after is not None
    assert 80 <= raised.value.retry_after <= 90
    assert await subscription_ids(sessions) != set()


async def test_an_unreachable_push_service_is_a_temporary_error(
    sessions: async_sessionmaker[AsyncSession], provider: WebPushProvider
) -> None:
    closed = PushService(origin="http://127.0.0.1:9")  # discard port: nothing listens
    await subscribe(sessions, closed, "phone", Browser())

    with pytest.raises(ProviderTemporaryError, match="could not be reached"):
        await provider.send(await message(sessions))


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_a_refused_device_fails_without_retry_and_keeps_its_subscription(
    sessions: async_sessionmaker[AsyncSession],
    push_service: PushService,
    provider: WebPushProvider,
    status: int,
) -> None:
    subscription_id = await subscribe(sessions, push_service, "phone", Browser())
    push_service.answer("phone", (status, {}))
    outgoing = await message(sessions)

    outcome = await provider.send(outgoing)

    assert outcome.status == "failed"
    assert f"HTTP {status}" in (outcome.reason or "")
    assert await subscription_ids(sessions) == {subscription_id}
    assert await events(sessions, outgoing.id) == {(f"{outgoing.id}:{subscription_id}:failed", "failed")}
    # A later attempt of the same message does not push to the refusing device again.
    await provider.send(outgoing)
    assert len(push_service.requests) == 1


async def test_a_patient_without_devices_is_rejected(
    sessions: async_sessionmaker[AsyncSession], provider: WebPushProvider
) -> None:
    with pytest.raises(ProviderRejectedError, match="no device"):
        await provider.send(await message(sessions))


async def test_a_long_body_is_shortened_to_fit_one_push_message(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    phone = Browser()
    await subscribe(sessions, push_service, "phone", phone)

    await provider.send(await message(sessions, body="Take your medication. " * 400))

    [request] = push_service.received("phone")
    assert len(request.body) <= 4096
    notification = phone.read(request)
    assert notification["body"].endswith("…")
    assert notification["body"].startswith("Take your medication. Take")
    assert len(notification_payload("Check-in", "é" * 5000, "m").encode()) <= MAX_PLAINTEXT_BYTES


async def test_the_vapid_private_key_never_appears_in_the_logs(
    sessions: async_sessionmaker[AsyncSession],
    push_service: PushService,
    vapid: VapidKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = WebPushProvider(sessions, vapid.private, SUBJECT)
    await subscribe(sessions, push_service, "phone", Browser())
    push_service.answer("phone", (403, {}))

    await provider.send(await message(sessions))

    assert caplog.records
    assert vapid.private not in caplog.text
    assert vapid.private not in repr(provider.__dict__)


def test_an_unusable_vapid_key_or_subject_is_refused_at_start(
    sessions: async_sessionmaker[AsyncSession], vapid: VapidKeys
) -> None:
    with pytest.raises(ValueError, match="VAPID private key") as raised:
        WebPushProvider(sessions, "not-a-key", SUBJECT)
    assert "not-a-key" not in str(raised.value)
    with pytest.raises(ValueError, match="VAPID subject"):
        WebPushProvider(sessions, vapid.private, "outreach@hospital.example")


def test_retry_after_is_read_as_seconds_or_an_http_date_and_capped() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Wed, 01 Jan 2025 00:02:00 GMT", now) == 120
    assert retry_after_seconds("Tue, 31 Dec 2024 00:00:00 GMT", now) == 0
    assert retry_after_seconds("9999999", now) == 3600
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def request(body: str = "How are you feeling today?") -> SendMessageInput:
    return send_request(SendSpec(channel="push", subject="Springfield General", body=body))


async def test_the_send_activity_pushes_a_journey_message_once(
    sessions: async_sessionmaker[AsyncSession], push_service: PushService, provider: WebPushProvider
) -> None:
    await load_synthea_patient(sessions)
    phone, laptop = Browser(), Browser()
    await subscribe(sessions, push_service, "phone", phone)
    await subscribe(sessions, push_service, "laptop", laptop)
    activities = MessagingActivities(sessions, ProviderRegistry({"push": provider}, OutboxProvider()))

    first = await ActivityEnvironment().run(activities.send_message, request())
    second = await ActivityEnvironment().run(activities.send_message, request())

    assert first == second
    assert first.status == "sent"
    async with sessions() as session:
        [row] = list(await session.scalars(select(Message)))
    assert (row.to, row.provider, row.provider_message_id) == ("2 devices", "webpush", f"webpush-{row.id}")
    assert row.reason == "2 of 2 devices"
    [to_phone] = push_service.received("phone")
    assert phone.read(to_phone) == {
        "title": "Springfield General",
        "body": "How are you feeling today?",
        "message_id": row.id,
    }
    assert len(push_service.received("laptop")) == 1
