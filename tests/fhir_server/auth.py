"""OAuth 2.0 on the test server: the client credentials grant with HTTP Basic client secrets or SMART
Backend Services JWT client assertions (RS384 / ES384, verified against registered public keys), and
opaque bearer tokens that can be expired at will."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300


@dataclass
class RegisteredClient:
    """A client the server knows: a secret (for HTTP Basic) and/or public keys by `kid`."""

    client_id: str
    secret: str | None = None
    keys: dict[str, PublicKeyTypes] = field(default_factory=dict)


class TokenError(Exception):
    """A refused token request: the OAuth `error` code, a description and the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The RFC 6749 error response."""
        return {"error": self.error, "error_description": self.description}


class TokenServer:
    """Registered clients, issued tokens (token -> client id and expiry, wall clock) and used assertion ids."""

    def __init__(self, lifetime: int = 300) -> None:
        self.lifetime = lifetime
        self.clients: dict[str, RegisteredClient] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.requests = 0
        self._used_jti: set[str] = set()

    def register_client(self, client_id: str, *, secret: str | None = None) -> RegisteredClient:
        """Register (or find) a client, setting its secret when given."""
        client = self.clients.setdefault(client_id, RegisteredClient(client_id))
        if secret is not None:
            client.secret = secret
        return client

    def register_key(self, client_id: str, public_key: bytes | str | PublicKeyTypes, key_id: str) -> None:
        """Register a client's public key (PEM or a `cryptography` key) under `kid` = `key_id`."""
        if isinstance(public_key, str | bytes):
            data = public_key.encode() if isinstance(public_key, str) else public_key
            public_key = load_pem_public_key(data)
        self.register_client(client_id).keys[key_id] = public_key

    def issue_token(self, form: dict[str, str], authorization: str | None, token_url: str) -> dict[str, Any]:
        """Answer a token request; TokenError when it is refused."""
        self.requests += 1
        if form.get("grant_type") != "client_credentials":
            raise TokenError("unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_assertion_type") or form.get("client_assertion"):
            client_id = self._check_assertion(form, token_url)
        elif authorization and authorization.lower().startswith("basic "):
            client_id = self._check_basic(authorization)
        else:
            raise TokenError("invalid_client", "no client authentication", 401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (client_id, time.time() + self.lifetime)
        scope = form.get("scope") or "system/*.rs"
        return {"access_token": token, "token_type": "bearer", "expires_in": self.lifetime, "scope": scope}

    def valid(self, token: str) -> bool:
        """Whether a bearer token was issued and has not expired."""
        issued = self.tokens.get(token)
        return issued is not None and time.time() < issued[1]

    def expire_tokens(self) -> None:
        """Every issued token stops working now."""
        self.tokens.clear()

    def _check_basic(self, authorization: str) -> str:
        try:
            decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode()
        except (ValueError, UnicodeDecodeError) as error:
            raise TokenError("invalid_client", "malformed Basic credentials", 401) from error
        raw_id, _, raw_secret = decoded.partition(":")
        client_id, secret = unquote(raw_id), unquote(raw_secret)
        client = self.clients.get(client_id)
        if client is None or client.secret is None or not secrets.compare_digest(client.secret, secret):
            raise TokenError("invalid_client", "unknown client or wrong secret", 401)
        return client_id

    def _check_assertion(self, form: dict[str, str], token_url: str) -> str:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion") or ""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenError("invalid_client", f"the assertion is not a JWT: {error}") from error
        client = self.clients.get(str(unverified.get("iss")))
        if client is None:
            raise TokenError("invalid_client", "unknown client (iss)")
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise TokenError("invalid_client", f"alg {algorithm} is not RS384 or ES384")
        key = client.keys.get(str(kid))
        if key is None:
            raise TokenError("invalid_client", f"no key registered under kid {kid!r}")
        try:
            claims = jwt.decode(
                assertion,
                key,  # type: ignore[arg-type]
                algorithms=[algorithm],
                audience=token_url,
                issuer=client.client_id,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise TokenError("invalid_client", f"the assertion was refused: {error}") from error
        if claims["sub"] != client.client_id:
            raise TokenError("invalid_client", "sub must equal iss (the client id)")
        if claims["exp"] > time.time() + MAX_ASSERTION_LIFETIME:
            raise TokenError("invalid_client", "exp is more than five minutes ahead")
        if claims["jti"] in self._used_jti:
            raise TokenError("invalid_client", "jti was used before")
        self._used_jti.add(claims["jti"])
        return client.client_id
