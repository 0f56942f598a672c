"""RFC 8058 one-click unsubscribe: every email (SMTP, SendGrid) carries `List-Unsubscribe` and
`List-Unsubscribe-Post`; the POST a mailbox provider sends unsubscribes at once, idempotently, recorded
as a consent change with its source, and the next send of that purpose is suppressed. A care-critical
template's email carries none, and the decision log says why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import MessageProvider, ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.sendgrid_email import SendGridEmailProvider
from activities.messaging.smtp_email import SmtpEmailProvider
from aftercare.patient_links.tokens import PatientLinks
from aftercare.settings import Settings, event_link_secret
from models.journey import SendSpec
from patient_pages import unsubscribe as unsubscribe_pages
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import ingest_patient, load_synthea_patient, publish_templates, send_request, with_email
from tests.local_services import SmtpRelay, running_smtp_relay

ONE_CLICK = {
    "content": "List-Unsubscribe=One-Click",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
}
FOLLOW_UP = SendSpec(channel="email", subject="Your follow-up", body="Hi {{ patient.given }}, please book.")


@pytest.fixture(autouse=True)
def fresh_rate_limit() -> None:
    unsubscribe_pages._limiter = unsubscribe_pages.RateLimiter(rate=50.0, burst=500)


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    with running_smtp_relay() as handler:
        yield handler


def links(settings: Settings, **changes: Any) -> PatientLinks:
    values: dict[str, Any] = {
        "secret": event_link_secret(settings),
        "base_url": "https://care.hospital.example",
        "mailto": "unsubscribe@hospital.example",
    }
    values.update(changes)
    return PatientLinks(**values)


def smtp(relay: SmtpRelay) -> SmtpEmailProvider:
    return SmtpEmailProvider("127.0.0.1", relay.port, "care@hospital.example", "Springfield", starttls=False)


async def send_email(
    sessions: async_sessionmaker[AsyncSession],
    provider: MessageProvider,
    settings: Settings,
    spec: SendSpec = FOLLOW_UP,
    step: str = "notify",
) -> Any:
    activities = MessagingActivities(
        sessions, ProviderRegistry({"email": provider}, OutboxProvider()), links=links(settings)
    )
    return await ActivityEnvironment().run(activities.send_message, send_request(spec, step=step))


async def abdul_with_email(sessions: async_sessionmaker[AsyncSession]) -> None:
    abdul = await load_synthea_patient(sessions)
    await ingest_patient(sessions, with_email(abdul, "abdul@example.org"))


def one_click_path(list_unsubscribe: str) -> str:
    match = re.match(
        r"<https://care\.hospital\.example(/u/[^>]+)>,\s*<mailto:unsubscribe@hospital\.example\?subject=",
        list_unsubscribe,
    )
    assert match, list_unsubscribe
    return match.group(1)


async def test_an_smtp_email_carries_one_click_unsubscribe_and_the_post_unsubscribes_once(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    relay: SmtpRelay,
    api_settings: Settings,
) -> None:
    await abdul_with_email(sessions)
    sent = await send_email(sessions, smtp(relay), api_settings)

    [received] = relay.received
    path = one_click_path(received["List-Unsubscribe"])
    shown = (await api.get(f"/v1/messages/{sent.message_id}")).json()
    viewed = await api.get(path)
    first = await api.post(path, **ONE_CLICK)
    again = await api.post(path, **ONE_CLICK)
    consents = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents")).json()
    next_send = await send_email(sessions, smtp(relay), api_settings, step="reminder")
    decisions = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/decisions")).json()

    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "ABDUL" not in path.upper()
    assert ABDUL_PATIENT_ID not in received["List-Unsubscribe"]
    text = received.get_body(preferencelist=("plain",))
    assert text is not None
    assert "Manage your messages or unsubscribe: https://care.hospital.example/p/" in text.get_content()
    assert shown["headers"] == {
        "List-Unsubscribe": received["List-Unsubscribe"],
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert viewed.status_code == 200
    assert "<form" in viewed.text
    assert first.status_code == again.status_code == 200
    assert "You are unsubscribed from emails about: Care coordination." in first.text
    changes = [c for c in consents["history"] if c["source"] == "list-unsubscribe"]
    assert [(c["channel"], c["purpose"], c["status"], c["detail"]) for c in changes] == [
        ("email", "care_coordination", "revoked", "one-click")
    ]
    assert next_send.status == "skipped"
    assert len(relay.received) == 1
    latest = decisions["items"][0]
    assert (latest["decision"], latest["rule"]) == ("suppressed", "consent")
    assert "list-unsubscribe" in latest["reason"]


async def test_a_sendgrid_email_carries_the_headers_and_sendgrid_accepts_them(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    sendgrid_mock: str,
    api_settings: Settings,
) -> None:
    await abdul_with_email(sessions)
    sendgrid = SendGridEmailProvider(sessions, "SG.test-key", "care@hospital.example", base_url=sendgrid_mock)

    sent = await send_email(sessions, sendgrid, api_settings)
    shown = (await api.get(f"/v1/messages/{sent.message_id}")).json()

    # Prism validates the request against SendGrid's Mail Send spec: 202 means it took the headers.
    assert sent.status == "queued"
    assert shown["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = one_click_path(shown["headers"]["List-Unsubscribe"])
    assert (await api.post(path, **ONE_CLICK)).status_code == 200


def test_the_sendgrid_request_names_both_headers(sessions: async_sessionmaker[AsyncSession]) -> None:
    from activities.messaging.providers import OutgoingMessage

    headers = {
        "List-Unsubscribe": "<https://care.hospital.example/u/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    message = OutgoingMessage(
        "m-1",
        "p-1",
        "email",
        "abdul@example.org",
        "Hi",
        "Body",
        None,
        "en",
        datetime.now(UTC),
        headers=headers,
    )
    request = SendGridEmailProvider(sessions, "SG.k", "care@hospital.example").mail(message).get()
    assert request["headers"] == {"Content-Language": "en", **headers}


async def test_a_care_critical_email_has_no_unsubscribe_and_the_decision_log_says_why(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    relay: SmtpRelay,
    api_settings: Settings,
) -> None:
    await abdul_with_email(sessions)
    await publish_templates(
        sessions,
        {
            "key": "medication-recall",
            "channel": "email",
            "subject": "Important: your medication",
            "body": "Please stop taking the medication and call us.",
            "care_critical": True,
        },
    )

    sent = await send_email(sessions, smtp(relay), api_settings, SendSpec(template="medication-recall"))
    shown = (await api.get(f"/v1/messages/{sent.message_id}")).json()
    decisions = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/decisions")).json()

    [received] = relay.received
    assert received["List-Unsubscribe"] is None
    assert received["List-Unsubscribe-Post"] is None
    assert shown["headers"] == {}
    assert "Manage your messages" not in shown["body"]
    [decision] = decisions["items"]
    assert decision["decision"] == "sent"
    assert "care-critical" in decision["reason"]


async def test_a_tampered_expired_or_foreign_link_gets_a_clear_page_and_changes_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    await abdul_with_email(sessions)
    mine = links(api_settings)
    token, _ = mine.token("unsubscribe", ABDUL_PATIENT_ID, "marketing")
    expired, _ = mine.token(
        "unsubscribe",
        ABDUL_PATIENT_ID,
        "marketing",
        ttl=timedelta(seconds=1),
        now=datetime.now(UTC) - timedelta(days=1),
    )
    foreign, _ = links(api_settings, secret=b"another install").token(
        "unsubscribe", ABDUL_PATIENT_ID, "marketing"
    )
    preferences, _ = mine.token("preferences", ABDUL_PATIENT_ID, "marketing")
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")

    answers = {
        "tampered": await api.post(f"/u/{tampered}", **ONE_CLICK),
        "expired": await api.post(f"/u/{expired}", **ONE_CLICK),
        "foreign": await api.post(f"/u/{foreign}", **ONE_CLICK),
        "another page's": await api.post(f"/u/{preferences}", **ONE_CLICK),
        "spanish": await api.get(f"/u/{tampered}", headers={"accept-language": "es-MX,es;q=0.9"}),
    }
    consents = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents")).json()

    assert {name: a.status_code for name, a in answers.items()} == {
        "tampered": 403,
        "expired": 410,
        "foreign": 403,
        "another page's": 403,
        "spanish": 403,
    }
    assert "This link does not work" in answers["tampered"].text
    assert "This link has expired" in answers["expired"].text
    assert "Este enlace no funciona" in answers["spanish"].text
    assert 'lang="es"' in answers["spanish"].text
    assert not [c for c in consents["history"] if c["source"] == "list-unsubscribe"]


async def test_a_browser_unsubscribes_from_the_page_with_post_redirect_get(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    await abdul_with_email(sessions)
    token, _ = links(api_settings).token("unsubscribe", ABDUL_PATIENT_ID, "marketing")

    posted = await api.post(
        f"/u/{token}", content="", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    shown = await api.get(posted.headers["location"])

    assert posted.status_code == 303
    assert "You are unsubscribed from emails about: News and offers." in shown.text


@pytest.mark.usefixtures("empty_database")
async def test_a_campaign_email_carries_one_click_unsubscribe_for_the_campaigns_purpose(
    sessions: async_sessionmaker[AsyncSession], relay: SmtpRelay, api_settings: Settings
) -> None:
    from activities.campaigns import CampaignActivities
    from activities.messaging.campaign_batch import CampaignBatchSender
    from aftercare.guardrails import GuardrailPolicy
    from aftercare.patient_links.tokens import PatientLinks as Links
    from tests.activities.messaging.test_campaign_batch import BATCH, _prepare

    await _prepare(sessions, 3)
    mine = links(api_settings)
    registry = ProviderRegistry({"email": smtp(relay)}, OutboxProvider())
    sender = CampaignBatchSender(sessions, registry, GuardrailPolicy(), links=mine)
    activities = CampaignActivities(sessions, sender, "America/New_York")

    result = await ActivityEnvironment().run(activities.send_campaign_batch, BATCH)

    assert result.delivered == 3
    assert len(relay.received) == 3
    for received in relay.received:
        token = one_click_path(received["List-Unsubscribe"]).removeprefix("/u/")
        claims = Links.read(mine, "unsubscribe", token)
        assert claims.purpose == "health_education"  # a campaign's default purpose
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
