"""An OpenID Connect issuer on a free local port for the tests: discovery document, a JWKS with a
rotating RSA signing key, and tokens signed with it. It counts how often its keys are fetched. It also
signs users in with the authorization code flow and PKCE (S256), at once and as `sign_in_subject` with
`sign_in_claims`, for the console's sign-in."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

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
    sign_in_subject: str = "nurse-1"
    sign_in_claims: dict[str, Any] = field(default_factory=lambda: {"roles": ["healthcare"]})
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

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
            if self.path.startswith("/authorize?"):
                self._authorize()
                return
            if self.path == "/.well-known/openid-configuration":
                body = {
                    "issuer": issuer.url,
                    "jwks_uri": f"{issuer.url}/jwks",
                    "authorization_endpoint": f"{issuer.url}/authorize",
                    "token_endpoint": f"{issuer.url}/token",
                }
            elif self.path == "/jwks":
                issuer.jwks_fetches += 1
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            self._json(200, body)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorize(self) -> None:
            query = {name: values[0] for name, values in parse_qs(urlsplit(self.path).query).items()}
            if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
                self.send_error(400)
                return
            code = secrets.token_urlsafe(16)
            issuer.codes[code] = query
            self.send_response(302)
            self.send_header(
                "Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            )
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            if self.path != "/token":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = {name: values[0] for name, values in parse_qs(self.rfile.read(length).decode()).items()}
            asked = issuer.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            )
            if (
                asked is None
                or asked["code_challenge"] != challenge
                or asked["redirect_uri"] != form.get("redirect_uri")
                or asked["client_id"] != form.get("client_id")
            ):
                self._json(400, {"error": "invalid_grant"})
                return
            token = issuer.token(subject=issuer.sign_in_subject, **issuer.sign_in_claims)
            self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})

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
