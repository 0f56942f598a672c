"""Real services on this machine that stand in for the outside world in tests and benchmarks: a Web Push
service (an HTTP server recording each push), a browser's side of a push subscription, and an SMTP relay
(aiosmtpd). Nothing here is mocked: each speaks the real protocol."""

from __future__ import annotations

import base64
import email
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.prism import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """A push service on a free local port: records each POST, answers per endpoint path."""

    origin: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def endpoint(self, device: str) -> str:
        return f"{self.origin}/push/{device}"

    def answer(self, device: str, *answers: tuple[int, dict[str, str]]) -> None:
        """The next answers for this device, in order; 201 Created once they run out."""
        self.answers[f"/push/{device}"] = list(answers)

    def received(self, device: str) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if request.path == f"/push/{device}"]

    def next_answer(self, path: str) -> tuple[int, dict[str, str]]:
        with self.lock:
            queued = self.answers.get(path)
            return queued.pop(0) if queued else (201, {"Location": f"/message/{uuid.uuid4().hex}"})


@contextmanager
def running_push_service() -> Iterator[PushService]:
    """A push service on a free local port, for as long as the context lasts."""
    service = PushService()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with service.lock:
                service.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            status, headers = service.next_answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


class Browser:
    """A browser's side of a subscription: its ECDH key pair and auth secret (RFC 8291 §2)."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = uuid.uuid4().bytes

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def read(self, request: Received) -> dict[str, Any]:
        """Decrypt what the push service received for this browser, as the browser does."""
        plaintext = http_ece.decrypt(
            request.body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        notification: dict[str, Any] = json.loads(plaintext)
        return notification


# Recipients the relay treats specially, as real relays do.
UNKNOWN_MAILBOX = "nobody@hospital.example"
GREYLISTED = "later@hospital.example"


class SmtpRelay:
    """Accepts mail, except a 550 for an unknown mailbox and a 451 for a greylisted one."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.port = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == UNKNOWN_MAILBOX:
            return "550 5.1.1 No such user here"
        if address == GREYLISTED:
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.received.append(email.message_from_bytes(content, policy=default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@contextmanager
def running_smtp_relay() -> Iterator[SmtpRelay]:
    """An SMTP relay on a free local port, for as long as the context lasts."""
    relay = SmtpRelay()
    relay.port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=relay.port)
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()
