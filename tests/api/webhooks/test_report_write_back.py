"""A provider's report that settles a journey message (delivered, undelivered, failed) starts the
rewrite of its Communication after the report commits, once per message and status, when outreach is
written back."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from aftercare.store.messages import record_intent
from tests.api.test_task_write_back import assert_write_back_started
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, post_signed
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, serve
from tests.helpers import with_twilio

SID = "SM" + "7" * 32


async def journey_sms(sessions: async_sessionmaker[AsyncSession], enrollment_id: str | None) -> str:
    async with sessions.begin() as session:
        message = await record_intent(
            session,
            {
                "id": f"msg-{enrollment_id}",
                "idempotency_key": f"{enrollment_id}/notify/1",
                "patient_id": ABDUL_PATIENT_ID,
                "enrollment_id": enrollment_id,
                "channel": "sms",
                "to": "+15559784581",
                "body": "Reply YES for a call",
                "status": "sent",
                "provider": "twilio",
                "provider_message_id": SID,
            },
            sent_now=True,
        )
    return message.id


def report(status: str) -> dict[str, str]:
    return {"MessageSid": SID, "AccountSid": "AC" + "0" * 32, "MessageStatus": status, "ErrorCode": "30003"}


@pytest.mark.parametrize("enrollment_id", ["enr-1", None], ids=["journey message", "no journey"])
async def test_an_undelivered_report_starts_rewriting_the_communication_once(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    enrollment_id: str | None,
) -> None:
    from api.app import create_app

    writing = with_twilio(
        api_settings, "twilio-reports", None, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL
    ).model_copy(update={"fhir_base_url": "http://127.0.0.1:9/fhir", "fhir_write_back": True})
    message_id = await journey_sms(sessions, enrollment_id)
    path = f"/webhooks/twilio/status?message_id={message_id}"
    async with serve(create_app(writing, temporal=dev_server.client), AUTH_HEADERS) as api:
        first = await post_signed(api, path, report("undelivered"))
        again = await post_signed(api, path, report("undelivered"))
    assert (first.status_code, again.status_code) == (204, 204)

    handle = dev_server.client.get_workflow_handle(f"fhir-write-back-message-{message_id}-undelivered")
    if enrollment_id is None:  # only journey messages are in the chart
        with pytest.raises(RPCError) as missing:
            await handle.describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
        return
    await assert_write_back_started(dev_server, handle.id, writing)
