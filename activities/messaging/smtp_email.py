"""Email through the hospital's own SMTP relay (standard library `smtplib`).

A relay cannot be asked whether it took a message, so an interrupted send is sent again with the same
`Message-ID`, which receiving systems use to recognise a duplicate.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderRejectedError,
    ProviderTemporaryError,
)

# Replies a relay gives for a mailbox that does not exist or cannot take mail.
_BOUNCE_CODES = frozenset({550, 551, 553})


class SmtpEmailProvider:
    """Sends each email in its own SMTP session (STARTTLS and login when configured)."""

    name = "smtp"
    external = True

    def __init__(
        self,
        host: str,
        port: int,
        from_email: str,
        from_name: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._from_email = from_email
        self._from_name = from_name
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout_seconds

    def email(self, message: OutgoingMessage) -> EmailMessage:
        """The RFC 5322 message: text body, HTML alternative, the patient's language."""
        email = EmailMessage()
        email["From"] = formataddr((self._from_name or "", self._from_email))
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = format_datetime(message.created_at)
        email["Message-ID"] = message_id_header(message.id, self._from_email)
        email.set_content(message.body)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        for attached in message.attachments:
            maintype, _, rest = attached["content_type"].partition("/")
            subtype, _, parameters = rest.partition(";")
            params = dict(part.strip().split("=", 1) for part in parameters.split(";") if "=" in part)
            email.add_attachment(
                base64.b64decode(attached["content"]),
                maintype=maintype,
                subtype=subtype.strip(),
                filename=attached["filename"],
                params=params,
            )
        # After the bodies: making the message multipart moves Content-* headers into the first part.
        if message.locale:
            email["Content-Language"] = message.locale
        for name, value in (message.headers or {}).items():
            email[name] = value
        return email

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Hand the email to the relay (`250` means the relay took responsibility for it)."""
        email = self.email(message)
        await asyncio.to_thread(self._deliver, email)
        return ProviderOutcome(status="sent", provider_message_id=str(email["Message-ID"]))

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """A relay keeps no record we can query."""
        return None

    def _deliver(self, email: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                elif self._starttls and self._username:
                    raise ProviderTemporaryError(
                        "the SMTP relay does not offer STARTTLS; not sending credentials"
                    )
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            [(code, reply)] = list(error.recipients.values())[:1]
            raise _by_code(code, reply, "refused the recipient") from error
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            raise _by_code(error.smtp_code, error.smtp_error, "refused the email") from error
        except smtplib.SMTPAuthenticationError as error:
            raise ProviderTemporaryError(f"the SMTP relay refused our login ({error.smtp_code})") from error
        except TimeoutError as error:
            raise ProviderTemporaryError("the SMTP relay did not answer in time", ambiguous=True) from error
        except (smtplib.SMTPException, OSError) as error:
            raise ProviderTemporaryError(
                f"the SMTP relay could not be used: {type(error).__name__}"
            ) from error


def message_id_header(message_id: str, from_email: str) -> str:
    """A stable `Message-ID` for a message: the same on every attempt."""
    domain = from_email.rpartition("@")[2] or "aftercare.invalid"
    return f"<{message_id}@{domain}>"


def _by_code(code: int, reply: bytes | str, what: str) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    reason = f"the SMTP relay {what}: {code} {text}"
    if 400 <= code < 500:
        return ProviderTemporaryError(reason)
    return ProviderRejectedError(reason, suppress="bounce" if code in _BOUNCE_CODES else None)
