"""Email through an SMTP relay: the provider talks to a real SMTP server (aiosmtpd) on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from activities.messaging.providers import OutgoingMessage, ProviderRejectedError, ProviderTemporaryError
from activities.messaging.smtp_email import SmtpEmailProvider
from tests.local_services import GREYLISTED, UNKNOWN_MAILBOX, SmtpRelay, running_smtp_relay
from tests.prism import free_port


@pytest.fixture
def relay() -> Iterator[tuple[SmtpRelay, int]]:
    with running_smtp_relay() as handler:
        yield handler, handler.port


def message(to: str = "abdul@example.org", **changes: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "id": "3f1c0c4e-msg",
        "patient_id": "p-1",
        "channel": "email",
        "to": to,
        "subject": "Su cita de seguimiento",
        "body": "Hola Abdul, reserve su cita.",
        "html": "<p>Hola Abdul, <b>reserve</b> su cita.</p>",
        "locale": "es",
        "created_at": datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
    }
    values.update(changes)
    return OutgoingMessage(**values)


def smtp(port: int) -> SmtpEmailProvider:
    return SmtpEmailProvider(
        "127.0.0.1", port, "care@hospital.example", "Springfield General", starttls=False
    )


async def test_the_relay_receives_subject_text_html_language_and_a_stable_message_id(
    relay: tuple[SmtpRelay, int],
) -> None:
    handler, port = relay
    outcome = await smtp(port).send(message())

    [received] = handler.received
    assert outcome.status == "sent"
    assert outcome.provider_message_id == received["Message-ID"] == "<3f1c0c4e-msg@hospital.example>"
    assert received["To"] == "abdul@example.org"
    assert received["From"] == "Springfield General <care@hospital.example>"
    assert received["Subject"] == "Su cita de seguimiento"
    assert received["Content-Language"] == "es"
    text = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Hola Abdul, reserve su cita."
    assert "<b>reserve</b>" in html.get_content()


async def test_a_resend_after_an_interruption_carries_the_same_message_id(
    relay: tuple[SmtpRelay, int],
) -> None:
    handler, port = relay
    provider = smtp(port)
    await provider.send(message())
    assert await provider.find_sent(message()) is None
    await provider.send(message())
    assert {received["Message-ID"] for received in handler.received} == {"<3f1c0c4e-msg@hospital.example>"}


async def test_an_unknown_mailbox_is_refused_for_good_and_the_address_suppressed(
    relay: tuple[SmtpRelay, int],
) -> None:
    _, port = relay
    with pytest.raises(ProviderRejectedError) as refused:
        await smtp(port).send(message(to=UNKNOWN_MAILBOX))
    assert "550" in str(refused.value)
    assert refused.value.suppress == "bounce"


async def test_a_temporary_refusal_is_retried_later(relay: tuple[SmtpRelay, int]) -> None:
    _, port = relay
    with pytest.raises(ProviderTemporaryError) as later:
        await smtp(port).send(message(to=GREYLISTED))
    assert "451" in str(later.value)


async def test_a_relay_that_is_down_is_a_temporary_failure() -> None:
    with pytest.raises(ProviderTemporaryError):
        await smtp(free_port()).send(message())


async def test_credentials_are_never_sent_without_starttls(relay: tuple[SmtpRelay, int]) -> None:
    _, port = relay
    guarded = SmtpEmailProvider(
        "127.0.0.1", port, "care@hospital.example", username="outreach", password="secret", starttls=True
    )
    with pytest.raises(ProviderTemporaryError) as refused:
        await guarded.send(message())
    assert "STARTTLS" in str(refused.value)


async def test_the_relay_receives_the_attachments_with_their_types(relay: tuple[SmtpRelay, int]) -> None:
    handler, port = relay
    ics = {
        "filename": "class.ics",
        "content_type": "text/calendar; method=REQUEST",
        "content": "QkVHSU46VkNBTEVOREFS",
    }
    png = {"filename": "check-in.png", "content_type": "image/png", "content": "iVBORw0KGgo="}
    await smtp(port).send(message(attachments=(ics, png)))

    [received] = handler.received
    files = {part.get_filename(): part for part in received.iter_attachments()}
    assert sorted(files) == ["check-in.png", "class.ics"]
    assert files["class.ics"].get_content_type() == "text/calendar"
    assert files["class.ics"].get_param("method") == "REQUEST"
    assert files["class.ics"].get_payload(decode=True) == b"BEGIN:VCALENDAR"
    assert files["check-in.png"].get_payload(decode=True) == b"\x89PNG\r\n\x1a\n"
    text = received.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().strip() == "Hola Abdul, reserve su cita."
