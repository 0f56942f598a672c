"""SMS through Twilio's Programmable Messaging API, with the official `twilio` SDK."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderRejectedError,
    ProviderTemporaryError,
)
from aftercare.provider_feedback.twilio_status import STATUS_OF, SUPPRESS_FOR_ERROR

_RECONCILE_WINDOW = timedelta(minutes=5)


class TwilioSmsProvider:
    """Sends SMS with `messages.create`; finds an interrupted send again with `messages.list`."""

    name = "twilio"
    external = True

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        base_url: str | None = None,
        status_callback: str | None = None,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_seconds))
        if base_url:
            self._client.api.base_url = base_url.rstrip("/")
        self._from = from_number
        self._status_callback = status_callback

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Create the message at Twilio."""
        options = (
            {"status_callback": f"{self._status_callback}?{urlencode({'message_id': message.id})}"}
            if self._status_callback
            else {}
        )
        try:
            created = await asyncio.to_thread(
                self._client.messages.create, to=message.to, from_=self._from, body=message.body, **options
            )
        except TwilioRestException as error:
            if error.status == 429 or error.status >= 500:
                raise ProviderTemporaryError(
                    f"Twilio answered {error.status} (code {error.code})", ambiguous=error.status >= 500
                ) from error
            raise ProviderRejectedError(
                f"Twilio refused the message: HTTP {error.status}, code {error.code}: {error.msg}",
                suppress=SUPPRESS_FOR_ERROR.get(str(error.code)),
            ) from error
        except requests.Timeout as error:
            raise ProviderTemporaryError("Twilio did not answer in time", ambiguous=True) from error
        except requests.RequestException as error:
            raise ProviderTemporaryError(f"Twilio could not be reached: {type(error).__name__}") from error
        return ProviderOutcome(
            status=STATUS_OF.get(str(created.status), "queued"), provider_message_id=created.sid
        )

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """Look for a message to the same number with the same body created since the intent."""
        try:
            recent = await asyncio.to_thread(
                self._client.messages.list, to=message.to, from_=self._from, limit=50
            )
        except (TwilioRestException, requests.RequestException) as error:
            raise ProviderTemporaryError("Twilio could not be asked about an interrupted send") from error
        earliest = message.created_at - _RECONCILE_WINDOW
        for candidate in recent:
            created = candidate.date_created
            if candidate.body == message.body and (created is None or created >= earliest):
                return ProviderOutcome(
                    status=STATUS_OF.get(str(candidate.status), "queued"), provider_message_id=candidate.sid
                )
        return None
