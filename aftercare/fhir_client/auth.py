"""How a FhirClient authenticates: nothing, a fixed bearer token, OAuth client credentials, or SMART
Backend Services (a signed JWT client assertion). Tokens and secrets are never logged or put in messages."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from aftercare.fhir_client.assertion import (
    CLIENT_ASSERTION_TYPE,
    SigningAlgorithm,
    client_assertion,
    load_signing_key,
)
from aftercare.fhir_client.errors import FhirConfigError
from aftercare.fhir_client.tokens import TokenAuth, TokenRequest


@runtime_checkable
class Auth(Protocol):
    """What a FhirClient asks of its authentication."""

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        """Headers to add to a request; may fetch a token through `client`."""
        ...

    def invalidate(self) -> None:
        """The server refused the credentials: get new ones next time."""
        ...


class NoAuth:
    """An open server."""

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        """No headers."""
        return {}

    def invalidate(self) -> None:
        """Nothing to forget."""

    def __repr__(self) -> str:
        return "NoAuth()"


class BearerToken:
    """A fixed bearer token, e.g. one an operator issued for the integration."""

    def __init__(self, token: str) -> None:
        if not token:
            raise FhirConfigError("the bearer token is empty")
        self._token = token

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        """`Authorization: Bearer <token>`."""
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """A fixed token cannot be renewed."""

    def __repr__(self) -> str:
        return "BearerToken(***)"


class ClientCredentials(TokenAuth):
    """OAuth 2.0 client credentials grant; the client authenticates with HTTP Basic (client_secret_basic).
    Without `token_url`, the token endpoint is discovered from `base_url`."""

    def __init__(
        self,
        token_url: str | None,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        base_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url=token_url, base_url=base_url, clock=clock)
        if not client_id or not client_secret:
            raise FhirConfigError("client credentials need a client id and a client secret")
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope

    async def _token_request(self, token_url: str) -> TokenRequest:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
        pair = f"{quote(self.client_id, safe='')}:{quote(self._client_secret, safe='')}"
        return TokenRequest(form, {"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"})

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, scope={self.scope!r})"


class SmartBackendServices(TokenAuth):
    """HL7 SMART Backend Services: client credentials with a JWT client assertion signed by our private
    key (RS384 or ES384), whose public key the server has registered under `key_id`."""

    def __init__(
        self,
        client_id: str,
        private_key_pem: str | bytes,
        key_id: str,
        algorithm: SigningAlgorithm = "RS384",
        token_url: str | None = None,
        scope: str = "system/*.rs",
        *,
        base_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(token_url=token_url, base_url=base_url, clock=clock)
        if not client_id or not key_id:
            raise FhirConfigError("SMART Backend Services needs a client id and a key id")
        self.client_id = client_id
        self.key_id = key_id
        self.algorithm: SigningAlgorithm = algorithm
        self.scope = scope
        self._key = load_signing_key(private_key_pem, algorithm)
        self._wall_clock = wall_clock

    async def _token_request(self, token_url: str) -> TokenRequest:
        assertion = client_assertion(
            client_id=self.client_id,
            token_url=token_url,
            key=self._key,
            key_id=self.key_id,
            algorithm=self.algorithm,
            now=self._wall_clock(),
        )
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return TokenRequest(form, {})

    def __repr__(self) -> str:
        return f"SmartBackendServices(client_id={self.client_id!r}, key_id={self.key_id!r}, {self.algorithm})"
