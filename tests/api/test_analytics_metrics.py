"""`/metrics` carries the analytics totals read from the rollups: messages by channel and outcome,
enrollments entered, ended and waiting, guardrail decisions."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.decisions import record_decision
from aftercare.store.messages import record_intent, update_message
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle


async def test_the_analytics_totals_are_on_metrics(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    async with sessions.begin() as session:
        for number, status in enumerate(("sent", "delivered", "skipped")):
            message = await record_intent(
                session,
                {
                    "id": f"m-{number}",
                    "idempotency_key": f"metrics/{number}",
                    "patient_id": ABDUL_PATIENT_ID,
                    "channel": "sms",
                    "status": "pending",
                },
                sent_now=status != "skipped",
            )
            await update_message(session, message.id, status=status)
        await record_decision(
            session,
            patient_id=ABDUL_PATIENT_ID,
            idempotency_key="metrics/2",
            purpose="care",
            decision="skipped",
            rule="quiet_hours",
            channel="sms",
        )

    text = (await api.get("/metrics")).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def messages(outcome: str) -> float:
        return sum(
            value
            for (name, labels), value in samples.items()
            if name == "aftercare_analytics_messages_total"
            and ("outcome", outcome) in labels
            and ("channel", "sms") in labels
        )

    assert (messages("messages"), messages("sent"), messages("delivered"), messages("blocked")) == (
        3,
        2,
        1,
        1,
    )
    decisions = [
        value
        for (name, labels), value in samples.items()
        if name == "aftercare_analytics_send_decisions_total" and ("rule", "quiet_hours") in labels
    ]
    assert decisions == [1]
