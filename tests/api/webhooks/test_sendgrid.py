"""SendGrid's event webhook: only batches signed with the account's key (ECDSA P-256 over timestamp and
body, SendGrid's scheme, verified by the SDK's `EventWebhook`) and recent enough are accepted. Events move
messages forward; bounces and spam reports suppress the address; unsubscribes withdraw consent."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.settings import Settings
from aftercare.store.messages import record_intent
from models.tables import ConsentEvent, Message, Suppression
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle

SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(
    SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
EMAIL = "abdul.koepp@example.org"


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "temporal_task_queue": "sendgrid-webhooks",
            "sendgrid_api_key": SecretStr("SG.key"),
            "sendgrid_from_email": "care@hospital.example",
            "sendgrid_webhook_public_key": PUBLIC_KEY,
        }
    )


@pytest.fixture
async def emailed(api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> str:
    """Abdul, and an email we sent him through SendGrid."""
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    await _sent_by_sendgrid(sessions, "msg-email-1", "enr-1/email/1", EMAIL)
    return "msg-email-1"


async def _sent_by_sendgrid(
    sessions: async_sessionmaker[AsyncSession], message_id: str, key: str, to: str
) -> None:
    """An email to Abdul's record that SendGrid accepted in the request `14c5d75ce93`."""
    async with sessions.begin() as session:
        await record_intent(
            session,
            {
                "id": message_id,
                "idempotency_key": key,
                "patient_id": ABDUL_PATIENT_ID,
                "channel": "email",
                "to": to,
                "subject": "Your follow-up",
                "body": "Please book.",
                "status": "queued",
                "provider": "sendgrid",
                "provider_message_id": "14c5d75ce93",
            },
            sent_now=True,
        )


def event(kind: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.filter0001.16648.5515E0B88.0",
        "aftercare_message_id": "msg-email-1",
        **fields,
    }


def signed(
    payload: str, timestamp: int | None = None, key: ec.EllipticCurvePrivateKey = SIGNING_KEY
) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    signature = key.sign((stamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


async def post_events(api: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    payload = json.dumps(events)
    return await api.post("/webhooks/sendgrid/events", content=payload, headers=signed(payload))


async def message(sessions: async_sessionmaker[AsyncSession]) -> Message:
    async with sessions() as session:
        return (await session.scalars(select(Message))).one()


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list(await session.scalars(select(model)))


@pytest.mark.usefixtures("emailed")
async def test_delivery_opens_and_clicks_are_recorded_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    batch = [
        event("processed", "e1"),
        event("delivered", "e2"),
        event("open", "e3"),
        event("click", "e4", url="https://hospital.example/book"),
    ]
    first = await post_events(api, batch)
    again = await post_events(api, batch)

    assert first.json() == {"applied": 4, "duplicates": 0, "unmatched": 0}
    assert again.json() == {"applied": 0, "duplicates": 4, "unmatched": 0}
    sent = await message(sessions)
    assert sent.status == "delivered"
    assert None not in (sent.delivered_at, sent.opened_at, sent.clicked_at)


@pytest.mark.usefixtures("emailed")
async def test_a_bounce_marks_the_email_undelivered_and_suppresses_the_address(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await post_events(api, [event("bounce", "e1", type="bounce", reason="550 5.1.1 unknown user")])
    assert response.status_code == 200
    sent = await message(sessions)
    assert (sent.status, sent.reason) == ("undelivered", "SendGrid bounce: 550 5.1.1 unknown user")
    [suppression] = await rows(sessions, Suppression)
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", EMAIL, "bounce")
    assert await rows(sessions, ConsentEvent) == []


@pytest.mark.usefixtures("emailed")
async def test_a_spam_report_suppresses_the_address_and_withdraws_email_consent(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await post_events(api, [event("delivered", "e1"), event("spamreport", "e2")])
    [suppression] = await rows(sessions, Suppression)
    assert suppression.reason == "spamreport"
    profile = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()
    assert [(c["channel"], c["status"], c["detail"]) for c in profile["consents"]] == [
        ("email", "revoked", "spamreport")
    ]


@pytest.mark.usefixtures("emailed")
async def test_an_unsubscribe_withdraws_email_consent(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await post_events(api, [event("unsubscribe", "e1")])
    [consent] = await rows(sessions, ConsentEvent)
    assert (consent.patient_id, consent.channel, consent.status) == (ABDUL_PATIENT_ID, "email", "revoked")


@pytest.mark.usefixtures("emailed")
async def test_events_about_mail_we_did_not_send_are_counted_and_ignored(api: httpx.AsyncClient) -> None:
    stranger = event("delivered", "e9", aftercare_message_id="someone-elses")
    stranger.pop("sg_message_id")
    response = await post_events(api, [stranger])
    assert response.json() == {"applied": 0, "duplicates": 0, "unmatched": 1}


@pytest.mark.usefixtures("emailed")
async def test_an_event_without_our_custom_argument_is_matched_by_sendgrids_message_id(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    legacy = event("delivered", "e1")
    legacy.pop("aftercare_message_id")
    assert (await post_events(api, [legacy])).json()["applied"] == 1
    assert (await message(sessions)).status == "delivered"


@pytest.mark.usefixtures("emailed")
async def test_without_our_custom_argument_emails_sent_in_one_request_are_told_apart_by_recipient(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # a second email of the same Mail Send request
    await _sent_by_sendgrid(sessions, "msg-email-2", "campaign:run-1:other", "someone.else@example.org")
    legacy = event("delivered", "e1", email="Someone.Else@example.org")
    legacy.pop("aftercare_message_id")
    assert (await post_events(api, [legacy])).json()["applied"] == 1
    statuses = {m.id: m.status for m in await rows(sessions, Message)}
    assert statuses == {"msg-email-1": "queued", "msg-email-2": "delivered"}


@pytest.mark.usefixtures("emailed")
async def test_a_tampered_batch_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    genuine = json.dumps([event("delivered", "e1")])
    tampered = json.dumps([event("bounce", "e1", type="bounce")])
    response = await api.post("/webhooks/sendgrid/events", content=tampered, headers=signed(genuine))
    assert response.status_code == 403
    assert (await message(sessions)).status == "queued"


@pytest.mark.usefixtures("emailed")
async def test_a_batch_signed_with_another_key_is_refused(api: httpx.AsyncClient) -> None:
    payload = json.dumps([event("delivered", "e1")])
    other = ec.generate_private_key(ec.SECP256R1())
    response = await api.post(
        "/webhooks/sendgrid/events", content=payload, headers=signed(payload, key=other)
    )
    assert response.status_code == 403


@pytest.mark.usefixtures("emailed")
async def test_an_old_signed_batch_is_refused_as_a_replay(api: httpx.AsyncClient) -> None:
    payload = json.dumps([event("delivered", "e1")])
    stale = signed(payload, timestamp=int(time.time()) - 3600)
    response = await api.post("/webhooks/sendgrid/events", content=payload, headers=stale)
    assert response.status_code == 403
    assert "replay" in response.json()["detail"]


@pytest.mark.usefixtures("emailed")
async def test_missing_signature_headers_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/webhooks/sendgrid/events", json=[event("delivered", "e1")])
    assert response.status_code == 403


@pytest.mark.usefixtures("emailed")
async def test_a_signed_body_that_is_not_an_event_array_is_a_bad_request(api: httpx.AsyncClient) -> None:
    payload = json.dumps({"event": "delivered"})
    response = await api.post("/webhooks/sendgrid/events", content=payload, headers=signed(payload))
    assert response.status_code == 400
