"""An OpenID Connect issuer on a free local port for the tests: discovery document, a JWKS with a
rotating RSA signing key, and tokens signed with it. It counts how often its keys are fetched."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.prism import free_port


@dataclass
class Issuer:
    """The issuer's state: its URL, its signing keys (by kid) and what was fetched."""

    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    jwks_fetches: int = 0

    def rotate(self) -> str:
        """A new signing key, published next to the old ones; its kid."""
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            document = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**document, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(
        self,
        *,
        kid: str | None = None,
        audience: str = "aftercare",
        issuer: str | None = None,
        expires_in: float = 300,
        subject: str = "nurse-1",
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """A token signed by the issuer's newest key (or `kid`, or a foreign `key`)."""
        kid = kid or list(self.keys)[-1]
        now = int(time.time())
        payload = {
            "iss": issuer or self.url,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + int(expires_in),
            **claims,
        }
        return jwt.encode(payload, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    """The issuer on a free local port, for as long as the context lasts."""
    issuer = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
            elif self.path == "/jwks":
                issuer.jwks_fetches += 1
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_port}"
    issuer.rotate()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
