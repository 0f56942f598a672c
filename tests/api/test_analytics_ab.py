"""A campaign's A/B result through the analytics API: a real run of two variants to 100 patients, replies
texted in through Twilio's inbound webhook by everyone who got one variant and a few who got the other;
rates, intervals and the p-value, and the winner that the rule then declares."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.settings import Settings
from models.campaign_tables import CampaignRecipient
from tests.api.test_campaigns import CAMPAIGN_YAML, YAML, _finished, _setup
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, post_signed
from tests.helpers import with_twilio
from tests.population import store_patients, synthetic_patient

pytestmark = pytest.mark.usefixtures("worker")

# A key of its own: the dev server outlives the test, and its campaign workflows are named by key.
AB_YAML = CAMPAIGN_YAML.replace("key: flu-2026", "key: flu-ab-2026")


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    """Texts go to Prism serving Twilio's API; replies come back signed with the test's token."""
    return with_twilio(
        settings, f"ab-{uuid.uuid4().hex[:8]}", twilio_mock, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL
    )


async def reply(api: httpx.AsyncClient, phone: str) -> None:
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "From": phone,
        "To": "+15005550006",
        "Body": "Booked, thanks",
    }
    assert (await post_signed(api, "/webhooks/twilio/inbound", params)).status_code == 200


async def test_replies_to_one_variant_make_it_the_winner_with_its_interval_and_p_value(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _setup(api)
    patients = [synthetic_patient(i) for i in range(100)]
    await store_patients(sessions, patients)
    assert (await api.post("/v1/campaigns", content=AB_YAML, headers=YAML)).status_code == 201
    assert (await api.post("/v1/campaigns/flu-ab-2026/launch")).status_code == 202
    await _finished(api, "flu-ab-2026", limit=120)
    async with sessions() as session:
        recipients = list(await session.scalars(select(CampaignRecipient)))
    urgent = sorted(int(r.patient_id.removeprefix("cp-")) for r in recipients if r.variant == "urgent")
    plain = sorted(int(r.patient_id.removeprefix("cp-")) for r in recipients if r.variant == "plain")
    phones = {p["id"]: p["telecom"][0]["value"] for p in patients}
    repliers = [f"cp-{i}" for i in urgent] + [f"cp-{i}" for i in plain[:3]]
    for patient in repliers:
        await reply(api, "+1" + phones[patient].replace("-", ""))

    answer = await api.get("/v1/analytics/campaigns/flu-ab-2026/ab", params={"metric": "replied"})
    body: dict[str, Any] = answer.json()

    assert answer.status_code == 200, answer.text
    rows = {row["variant"]: row for row in body["variants"]}
    assert (rows["urgent"]["exposures"], rows["urgent"]["conversions"]) == (len(urgent), len(urgent))
    assert (rows["plain"]["exposures"], rows["plain"]["conversions"]) == (len(plain), 3)
    assert rows["plain"]["rate"] == pytest.approx(3 / len(plain))
    assert rows["plain"]["ci_low"] < rows["plain"]["rate"] < rows["plain"]["ci_high"]
    assert rows["urgent"]["p_value"] is None
    assert rows["plain"]["p_value"] < 1e-6
    assert body["winner"] == ("urgent" if min(len(urgent), len(plain)) >= 30 else None)
    assert "Bonferroni" in body["rule"]
    assert (
        await api.get("/v1/analytics/campaigns/flu-ab-2026/ab", params={"run_id": "other"})
    ).status_code == 404
