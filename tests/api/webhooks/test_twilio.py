"""Twilio's webhooks: only requests Twilio signed are accepted; status callbacks move a message forward
and never back; texted keywords change consent for the number; other texts are replies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.settings import Settings
from aftercare.store.messages import record_intent
from models.facility_tables import PatientFacility
from models.tables import ConsentEvent, InboundMessage, Message, MessageEvent, Suppression, TriggerEvent
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, post_signed
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import with_twilio

ABDUL_PHONE = "+15559784581"


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return with_twilio(
        settings,
        "twilio-webhooks",
        None,
        AUTH_TOKEN,
        public_base_url=PUBLIC_BASE_URL,
        hospital_name="Springfield General",
        hospital_phone="+1 555 010 0100",
    )


@pytest.fixture
async def patient(api: httpx.AsyncClient) -> str:
    response = await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    assert response.status_code == 200
    return ABDUL_PATIENT_ID


def inbound(body: str, sid: str = "SM" + "1" * 32, sender: str = ABDUL_PHONE) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
    }


async def sent_sms(sessions: async_sessionmaker[AsyncSession], message_id: str = "msg-1") -> str:
    async with sessions.begin() as session:
        await record_intent(
            session,
            {
                "id": message_id,
                "idempotency_key": f"enr-1/{message_id}/1",
                "patient_id": ABDUL_PATIENT_ID,
                "channel": "sms",
                "to": ABDUL_PHONE,
                "body": "Reply YES for a call",
                "status": "queued",
                "provider": "twilio",
                "provider_message_id": "SM" + message_id.replace("-", "").ljust(32, "0"),
            },
            sent_now=True,
        )
    return "SM" + message_id.replace("-", "").ljust(32, "0")


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list(await session.scalars(select(model)))


# --- signatures -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("patient")
async def test_a_request_without_a_signature_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/webhooks/twilio/inbound", data=inbound("YES"))
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json()["detail"]


async def test_a_tampered_body_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await post_signed(
        api, "/webhooks/twilio/inbound", inbound("STOP"), signed_params=inbound("Thanks!")
    )
    assert response.status_code == 403
    assert await rows(sessions, Suppression) == []
    assert await rows(sessions, InboundMessage) == []


async def test_a_signature_made_with_another_token_or_for_another_url_is_refused(
    api: httpx.AsyncClient, patient: str
) -> None:
    other_token = await post_signed(api, "/webhooks/twilio/inbound", inbound("YES"), token="not-our-token")
    other_url = await post_signed(
        api,
        "/webhooks/twilio/inbound",
        inbound("YES"),
        signed_url="https://attacker.example/webhooks/twilio/inbound",
    )
    assert (other_token.status_code, other_url.status_code) == (403, 403)


# --- status callbacks -------------------------------------------------------------------------------


@pytest.mark.usefixtures("patient")
async def test_status_callbacks_move_a_message_forward_and_a_late_one_never_back(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sid = await sent_sms(sessions)
    path = "/webhooks/twilio/status?message_id=msg-1"
    for status in ("sent", "delivered", "sent", "delivered"):
        response = await post_signed(api, path, {"MessageSid": sid, "MessageStatus": status})
        assert response.status_code == 204

    [message] = (await api.get("/v1/messages", params={"patient_id": ABDUL_PATIENT_ID})).json()["items"]
    assert message["status"] == "delivered"
    assert message["delivered_at"] is not None
    assert sorted(event.event for event in await rows(sessions, MessageEvent)) == ["delivered", "sent"]


@pytest.mark.usefixtures("patient")
async def test_an_undelivered_text_to_a_landline_records_the_reason_and_suppresses_the_number(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sid = await sent_sms(sessions)
    response = await post_signed(
        api,
        "/webhooks/twilio/status?message_id=msg-1",
        {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30006"},
    )
    assert response.status_code == 204
    [message] = (await api.get("/v1/messages")).json()["items"]
    assert (message["status"], message["reason"]) == ("undelivered", "Twilio error 30006")
    [suppression] = await rows(sessions, Suppression)
    assert (suppression.channel, suppression.address, suppression.reason) == ("sms", ABDUL_PHONE, "landline")


@pytest.mark.usefixtures("patient")
async def test_a_callback_about_another_message_sid_is_ignored(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await sent_sms(sessions)
    response = await post_signed(
        api,
        "/webhooks/twilio/status?message_id=msg-1",
        {"MessageSid": "SM" + "f" * 32, "MessageStatus": "failed"},
    )
    assert response.status_code == 204
    [message] = (await api.get("/v1/messages")).json()["items"]
    assert message["status"] == "queued"


@pytest.mark.usefixtures("patient")
async def test_a_callback_names_the_sid_of_an_interrupted_send_unless_another_message_owns_it(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owned = await sent_sms(sessions, "msg-1")
    async with sessions.begin() as session:
        for message_id in ("msg-2", "msg-3"):  # Twilio's answer was lost: no SID yet
            await record_intent(
                session,
                {
                    "id": message_id,
                    "idempotency_key": f"enr-1/{message_id}/1",
                    "patient_id": ABDUL_PATIENT_ID,
                    "channel": "sms",
                    "to": ABDUL_PHONE,
                    "body": "Reply YES for a call",
                    "status": "sending",
                    "provider": "twilio",
                },
                sent_now=False,
            )
    own_sid = "SM" + "2" * 32
    for message_id, sid in (("msg-2", own_sid), ("msg-3", owned)):
        response = await post_signed(
            api,
            f"/webhooks/twilio/status?message_id={message_id}",
            {"MessageSid": sid, "MessageStatus": "sent"},
        )
        assert response.status_code == 204

    by_id = {message.id: message for message in await rows(sessions, Message)}
    assert (by_id["msg-2"].status, by_id["msg-2"].provider_message_id) == ("sent", own_sid)
    assert (by_id["msg-3"].status, by_id["msg-3"].provider_message_id) == ("sending", None)
    assert by_id["msg-1"].provider_message_id == owned


# --- keywords and replies ---------------------------------------------------------------------------


async def test_stop_suppresses_the_number_and_withdraws_sms_consent(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await post_signed(api, "/webhooks/twilio/inbound", inbound(" stop. "))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Message>" not in response.text

    profile = (await api.get(f"/v1/patients/{patient}")).json()
    assert [(c["channel"], c["status"], c["detail"]) for c in profile["consents"]] == [
        ("sms", "revoked", "STOP")
    ]
    sms = next(channel for channel in profile["channels"] if channel["channel"] == "sms")
    assert sms["reachable"] is False
    assert "withdrew consent" in sms["reason"]
    [suppression] = await rows(sessions, Suppression)
    assert (suppression.address, suppression.reason) == (ABDUL_PHONE, "stop")
    [event] = await rows(sessions, TriggerEvent)
    assert (event.type, event.patient_id, event.data["keyword"]) == ("sms.opt_out", patient, "opt_out")


async def test_a_redelivered_stop_is_recorded_once(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for _ in range(2):
        assert (await post_signed(api, "/webhooks/twilio/inbound", inbound("STOP"))).status_code == 200
    assert len(await rows(sessions, ConsentEvent)) == 1
    assert len(await rows(sessions, InboundMessage)) == 1


async def test_start_after_stop_lifts_the_suppression_and_restores_consent(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await post_signed(api, "/webhooks/twilio/inbound", inbound("STOP", sid="SM" + "1" * 32))
    await post_signed(api, "/webhooks/twilio/inbound", inbound("Start", sid="SM" + "2" * 32))

    assert await rows(sessions, Suppression) == []
    profile = (await api.get(f"/v1/patients/{patient}")).json()
    assert [(c["channel"], c["status"]) for c in profile["consents"]] == [("sms", "granted")]
    assert next(c for c in profile["channels"] if c["channel"] == "sms")["reachable"] is True


async def test_yes_opts_back_in_only_a_number_that_opted_out(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await post_signed(api, "/webhooks/twilio/inbound", inbound("YES", sid="SM" + "1" * 32))
    await post_signed(api, "/webhooks/twilio/inbound", inbound("STOP", sid="SM" + "2" * 32))
    await post_signed(api, "/webhooks/twilio/inbound", inbound("yes", sid="SM" + "3" * 32))

    events = sorted((await rows(sessions, TriggerEvent)), key=lambda event: event.id)
    assert [event.type for event in events] == ["sms.reply", "sms.opt_out", "sms.opt_in"]
    assert await rows(sessions, Suppression) == []


async def test_help_is_answered_with_who_we_are_and_how_to_stop(api: httpx.AsyncClient, patient: str) -> None:
    response = await post_signed(api, "/webhooks/twilio/inbound", inbound("HELP"))
    assert response.status_code == 200
    assert response.text.endswith(
        "<Message>Springfield General: care follow-up messages. Questions? Call +1 555 010 0100. "
        "Reply STOP to opt out.</Message></Response>"
    )


async def test_a_reply_goes_to_the_patient_we_last_texted_at_that_number(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await sent_sms(sessions)
    response = await post_signed(api, "/webhooks/twilio/inbound", inbound("Yes please call me"))
    assert response.status_code == 200
    [event] = await rows(sessions, TriggerEvent)
    assert (event.type, event.patient_id) == ("sms.reply", patient)
    assert event.data == {"body": "Yes please call me", "keyword": None}
    [recorded] = await rows(sessions, InboundMessage)
    assert (recorded.patient_id, recorded.keyword) == (patient, None)


@pytest.mark.usefixtures("patient")
async def test_a_text_from_an_unknown_number_is_kept_but_reaches_nobody(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await post_signed(api, "/webhooks/twilio/inbound", inbound("hello", sender="+15550000000"))
    assert response.status_code == 200
    [recorded] = await rows(sessions, InboundMessage)
    assert recorded.patient_id is None
    assert await rows(sessions, TriggerEvent) == []


async def test_help_is_answered_as_the_patient_s_facility(
    api: httpx.AsyncClient, patient: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    facility = {"key": "north", "name": "North Hospital", "timezone": "UTC", "help_phone": "+1 555 010 0199"}
    assert (await api.post("/v1/facilities", json=facility)).status_code == 201
    async with sessions.begin() as session:
        session.add(PatientFacility(patient_id=patient, facility="north", source="managing_organization"))
    response = await post_signed(api, "/webhooks/twilio/inbound", inbound("HELP"))
    assert response.text.endswith(
        "<Message>North Hospital: care follow-up messages. Questions? Call +1 555 010 0199. "
        "Reply STOP to opt out.</Message></Response>"
    )
