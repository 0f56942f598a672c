"""Suppressed addresses: staff can see them and lift a bounce or an invalid address, but an SMS STOP is
the patient's to lift (by texting START)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.suppressions import suppress


async def suppressed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await suppress(session, "email", "Abdul@Example.org", "bounce", source="sendgrid")
        await suppress(session, "sms", "+15559784581", "stop", source="sms-keyword")


async def test_suppressions_are_listed_and_filtered_by_channel(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await suppressed(sessions)
    everything = (await api.get("/v1/suppressions")).json()["items"]
    emails = (await api.get("/v1/suppressions", params={"channel": "email"})).json()["items"]
    assert {(item["channel"], item["address"], item["reason"]) for item in everything} == {
        ("email", "abdul@example.org", "bounce"),
        ("sms", "+15559784581", "stop"),
    }
    assert [item["address"] for item in emails] == ["abdul@example.org"]
    assert (await api.get("/v1/suppressions", params={"channel": "fax"})).status_code == 422


async def test_staff_lift_a_bounce_but_not_a_stop(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await suppressed(sessions)
    lifted = await api.delete("/v1/suppressions/email/ABDUL@example.org")
    stop = await api.delete("/v1/suppressions/sms/+15559784581")
    again = await api.delete("/v1/suppressions/email/abdul@example.org")

    assert lifted.status_code == 204
    assert stop.status_code == 404
    assert "START" in stop.json()["detail"]
    assert again.status_code == 404
    remaining = (await api.get("/v1/suppressions")).json()["items"]
    assert [item["reason"] for item in remaining] == ["stop"]
