"""SMS through Twilio's Programmable Messaging API, with the official `twilio` SDK."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderRejectedError,
    ProviderTemporaryError,
    retry_after_seconds,
)
from aftercare.provider_feedback.twilio_status import STATUS_OF, SUPPRESS_FOR_ERROR


class _HeaderKeepingClient(TwilioHttpClient):
    """The SDK's HTTP client, keeping each thread's last response headers: `TwilioRestException` drops
    them, and a 429's `Retry-After` is among them."""

    def __init__(self, timeout: float, connections: int = 32) -> None:
        super().__init__(timeout=timeout)
        self._last = threading.local()
        # Keep as many connections as calls may be in flight (the SDK keeps min(32, CPUs + 4) for https
        # and requests' 10 for http): a call beyond the pool opened, and then dropped, a connection
        # (a TLS handshake each against the real API).
        if self.session is not None:
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=connections)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._last.headers = {}
        response = super().request(*args, **kwargs)
        self._last.headers = dict(response.headers or {})
        return response

    def last_retry_after(self) -> float | None:
        """The `Retry-After` of this thread's last response, in seconds (delta or HTTP date)."""
        return retry_after_seconds(getattr(self._last, "headers", {}).get("Retry-After"))


@contextmanager
def classified_twilio_errors(http: _HeaderKeepingClient, what: str) -> Iterator[None]:
    """Twilio's failures as the provider errors the delivery understands: 429 and network trouble are
    temporary, 5xx and timeouts ambiguous (Twilio may have taken `what`), other 4xx refusals."""
    try:
        yield
    except TwilioRestException as error:
        if error.status == 429:
            raise ProviderTemporaryError(
                f"Twilio answered 429 (code {error.code})", retry_after=http.last_retry_after()
            ) from error
        if error.status >= 500:
            raise ProviderTemporaryError(
                f"Twilio answered {error.status} (code {error.code})", ambiguous=True
            ) from error
        raise ProviderRejectedError(
            f"Twilio refused {what}: HTTP {error.status}, code {error.code}: {error.msg}",
            suppress=SUPPRESS_FOR_ERROR.get(str(error.code)),
        ) from error
    except requests.Timeout as error:
        raise ProviderTemporaryError("Twilio did not answer in time", ambiguous=True) from error
    except requests.RequestException as error:
        raise ProviderTemporaryError(f"Twilio could not be reached: {type(error).__name__}") from error


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
        connections: int = 32,
    ) -> None:
        self._http = _HeaderKeepingClient(timeout=timeout_seconds, connections=connections)
        self._client = Client(account_sid, auth_token, http_client=self._http)
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
        created = await asyncio.to_thread(self._create, message, options)
        return ProviderOutcome(
            status=STATUS_OF.get(str(created.status), "queued"), provider_message_id=created.sid
        )

    def _sender(self, message: OutgoingMessage) -> dict[str, str]:
        """The facility's number or messaging service (`MG…`), else the configured number."""
        sender = message.sender or self._from
        return {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}

    def _create(self, message: OutgoingMessage, options: dict[str, str]) -> MessageInstance:
        """`messages.create` (in a worker thread), its failures classified."""
        with classified_twilio_errors(self._http, "the message"):
            return self._client.messages.create(
                to=message.to, body=message.body, **self._sender(message), **options
            )

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """The message an interrupted attempt may have created: to the same number, with the same body,
        created since that attempt began, and owned by no other message (the earliest such one).

        Twilio's message list does not show the status callback URL that names our message, so that
        match is made by the status webhook instead (`apply_status_callback` records the SID)."""
        try:
            recent = await asyncio.to_thread(
                self._client.messages.list,
                to=message.to,
                from_=self._sender(message).get("from_", self._from),
                limit=50,
            )
        except (TwilioRestException, requests.RequestException) as error:
            raise ProviderTemporaryError("Twilio could not be asked about an interrupted send") from error
        since = message.looked_up_since
        candidates = [
            candidate
            for candidate in recent
            if candidate.body == message.body
            and candidate.sid not in message.owned_elsewhere
            and candidate.date_created is not None
            and candidate.date_created >= since
            and str(candidate.direction or "outbound-api").startswith("outbound")
        ]
        if not candidates:
            return None
        found = min(candidates, key=lambda candidate: candidate.date_created or since)
        status = STATUS_OF.get(str(found.status), "queued")
        return ProviderOutcome(status=status, provider_message_id=found.sid)
