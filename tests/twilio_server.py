"""A small Twilio in the tests: the part of the Messages API (2010-04-01) the `twilio` SDK uses to send a
text and to list texts, over real HTTP on a free local port.

Unlike Prism (which validates requests against Twilio's spec and answers made-up examples), it keeps
the messages it accepted and lists exactly those, and it fails on demand: a create may answer 500
without sending, accept the message and still answer 500 (as a timeout behind Twilio's edge does), or
answer 429 with a `Retry-After`.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.prism import free_port

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Messages\.json$")

Answer = Literal["accept", "refuse_500", "accept_then_500", "rate_limit_429"]


@dataclass
class SentText:
    """A message this Twilio accepted."""

    sid: str
    to: str
    from_: str
    body: str
    date_created: datetime
    status_callback: str | None = None

    def resource(self, account: str) -> dict[str, Any]:
        """The Message resource as Twilio answers it."""
        created = format_datetime(self.date_created.astimezone(UTC), usegmt=True)
        return {
            "sid": self.sid,
            "account_sid": account,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": created,
            "date_updated": created,
            "date_sent": None,
            "num_segments": "1",
            "num_media": "0",
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{self.sid}.json",
        }


@dataclass
class FakeTwilio:
    """The accepted messages, the answers queued for the next creates, and the calls received."""

    base_url: str = ""
    accepted: list[SentText] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    retry_after: str = "30"
    creates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, *answers: Answer) -> None:
        """How the next creates are answered, in order; accepted once they run out."""
        with self.lock:
            self.answers = list(answers)

    def seed(self, to: str, from_: str, body: str, date_created: datetime) -> SentText:
        """A message sent earlier (by anyone): the list shows it."""
        text = SentText(f"SM{uuid.uuid4().hex}", to, from_, body, date_created)
        with self.lock:
            self.accepted.append(text)
        return text

    def create(self, form: dict[str, str]) -> tuple[int, dict[str, str], SentText | None]:
        with self.lock:
            self.creates += 1
            answer = self.answers.pop(0) if self.answers else "accept"
            if answer == "rate_limit_429":
                return 429, {"Retry-After": self.retry_after}, None
            if answer == "refuse_500":
                return 500, {}, None
            text = SentText(
                f"SM{uuid.uuid4().hex}",
                form.get("To", ""),
                form.get("From") or form.get("MessagingServiceSid", ""),  # a service sends as itself
                form.get("Body", ""),
                datetime.now(UTC),
                form.get("StatusCallback"),
            )
            self.accepted.append(text)
            return (500 if answer == "accept_then_500" else 201), {}, text

    def listed(self, query: dict[str, str]) -> list[SentText]:
        """Newest first, filtered by `To` and `From` as Twilio does."""
        with self.lock:
            texts = list(self.accepted)
        texts = [
            text
            for text in texts
            if (not query.get("To") or text.to == query["To"])
            and (not query.get("From") or text.from_ == query["From"])
        ]
        return sorted(texts, key=lambda text: text.date_created, reverse=True)


def _error(status: int, message: str) -> dict[str, Any]:
    return {"code": 20500 if status >= 500 else 20429, "message": message, "more_info": "", "status": status}


@contextmanager
def running_twilio() -> Iterator[FakeTwilio]:
    """Twilio's Messages API on a free local port, for as long as the context lasts."""
    twilio = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(
            self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            for name, value in {**(headers or {}), "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
            matched = _MESSAGES.match(urlsplit(self.path).path)
            if matched is None:
                self._answer(404, _error(404, "not found"))
                return
            status, headers, text = twilio.create(form)
            if status == 201 and text is not None:
                self._answer(201, text.resource(matched["account"]))
            else:
                self._answer(status, _error(status, "Twilio could not take the message"), headers)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            matched = _MESSAGES.match(url.path)
            if matched is None:
                self._answer(404, _error(404, "not found"))
                return
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            size = int(query.get("PageSize", "50"))
            texts = twilio.listed(query)[:size]
            self._answer(
                200,
                {
                    "messages": [text.resource(matched["account"]) for text in texts],
                    "first_page_uri": url.path,
                    "next_page_uri": None,
                    "previous_page_uri": None,
                    "page": 0,
                    "page_size": size,
                    "start": 0,
                    "end": max(len(texts) - 1, 0),
                    "uri": self.path,
                },
            )

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    twilio.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield twilio
    finally:
        server.shutdown()
        server.server_close()
