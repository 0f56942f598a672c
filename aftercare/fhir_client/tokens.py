"""OAuth 2.0 access tokens from a token endpoint: fetched once, shared by concurrent callers, kept until
shortly before they expire. The token endpoint is found in `.well-known/smart-configuration` when it is
not configured."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from aftercare.fhir_client.errors import FhirAuthError, FhirConfigError, FhirUnavailable
from aftercare.fhir_client.retry import retry_after_seconds

# Assumed lifetime when a token response has no `expires_in`.
DEFAULT_TOKEN_LIFETIME = 300.0
# A token is replaced this long before it expires (at most a tenth of its lifetime).
REFRESH_MARGIN = 30.0
_JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the monotonic time after which it is not used any more."""

    value: str
    use_until: float


class TokenAuth(ABC):
    """Auth with tokens from a token endpoint. Subclasses say how to ask for one (`_token_request`)."""

    def __init__(
        self,
        *,
        token_url: str | None,
        base_url: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if token_url is None and base_url is None:
            raise FhirConfigError("a token URL, or the FHIR base URL to discover it from, is needed")
        self._token_url = token_url
        self._base_url = base_url
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        """`Authorization: Bearer ...` with a valid token, fetching one when needed."""
        return {"Authorization": f"Bearer {await self.access_token(client)}"}

    def invalidate(self) -> None:
        """Forget the token (the server refused it); the next call fetches a new one."""
        self._token = None

    async def access_token(self, client: httpx.AsyncClient) -> str:
        """A valid access token; concurrent callers wait for the one request in flight."""
        token = self._token
        if token is not None and self._clock() < token.use_until:
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and self._clock() < token.use_until:
                return token.value
            token_url = await self.token_url(client)
            response = await _post(client, token_url, await self._token_request(token_url))
            self._token = self._read_token(response)
            return self._token.value

    async def token_url(self, client: httpx.AsyncClient) -> str:
        """The token endpoint: configured, or discovered once from the server's SMART configuration."""
        if self._token_url is None:
            assert self._base_url is not None
            self._token_url = await discover_token_url(client, self._base_url)
        return self._token_url

    @abstractmethod
    async def _token_request(self, token_url: str) -> TokenRequest:
        """The form and headers of a token request."""

    def _read_token(self, response: httpx.Response) -> AccessToken:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise FhirAuthError(
                "the token endpoint answered without an access_token", status=response.status_code
            )
        lifetime = body.get("expires_in")
        seconds = (
            float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_TOKEN_LIFETIME
        )
        margin = min(REFRESH_MARGIN, seconds / 10)
        return AccessToken(body["access_token"], self._clock() + seconds - margin)


@dataclass(frozen=True)
class TokenRequest:
    """A token request: form fields and extra headers (e.g. HTTP Basic client authentication)."""

    form: dict[str, str]
    headers: dict[str, str]


async def _post(client: httpx.AsyncClient, token_url: str, request: TokenRequest) -> httpx.Response:
    try:
        response = await client.post(token_url, data=request.form, headers={**_JSON, **request.headers})
    except httpx.TransportError as error:
        raise FhirUnavailable(f"the token endpoint is unreachable ({type(error).__name__})") from error
    if response.status_code == 429 or response.status_code >= 500:
        raise FhirUnavailable(
            f"the token endpoint answered {response.status_code}",
            status=response.status_code,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if response.status_code >= 400:
        raise FhirAuthError(
            f"the token endpoint refused the request ({response.status_code})",
            status=response.status_code,
            issues=_oauth_error(response),
        )
    return response


def _oauth_error(response: httpx.Response) -> list[str]:
    try:
        body: Any = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return []
    description = body.get("error_description")
    return [f"{body['error']}: {description}" if isinstance(description, str) else body["error"]]


async def discover_token_url(client: httpx.AsyncClient, base_url: str) -> str:
    """The `token_endpoint` of `{base}/.well-known/smart-configuration`."""
    url = f"{base_url.rstrip('/')}/.well-known/smart-configuration"
    try:
        response = await client.get(url, headers=_JSON)
    except httpx.TransportError as error:
        raise FhirUnavailable(f"the SMART configuration is unreachable ({type(error).__name__})") from error
    if response.status_code == 429 or response.status_code >= 500:
        raise FhirUnavailable(
            f"the SMART configuration answered {response.status_code}", status=response.status_code
        )
    try:
        document: Any = response.json() if response.status_code == 200 else None
    except ValueError:
        document = None
    token_url = document.get("token_endpoint") if isinstance(document, dict) else None
    if not isinstance(token_url, str) or not token_url:
        raise FhirConfigError(
            f"no token endpoint: {url} answered {response.status_code} without a token_endpoint; "
            "configure the token URL"
        )
    return token_url
