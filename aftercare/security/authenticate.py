"""Authentication: an API key in `X-API-Key` (or as a bearer token), a bearer JWT, or, in development
only, the all-roles development key. Every failure says why, without saying which part was wrong."""

from __future__ import annotations

import hmac

from aftercare.security.api_keys import PREFIX, ApiKeyVerifier, InvalidApiKey
from aftercare.security.jwt_auth import InvalidToken, JwtVerifier
from aftercare.security.principal import Principal, PrincipalKind
from models.roles import ALL_ROLES

API_KEY_HEADER = "X-API-Key"


class AuthenticationFailed(Exception):
    """No credentials, or credentials that do not authenticate. `error` is RFC 6750's error code."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


DEV_PRINCIPAL = Principal(kind=PrincipalKind.DEV, subject="dev", roles=ALL_ROLES)


class Authenticator:
    """Turns a request's credentials into a `Principal`."""

    def __init__(self, api_keys: ApiKeyVerifier, jwt: JwtVerifier | None, dev_key: str | None) -> None:
        self.api_keys = api_keys
        self.jwt = jwt
        self.dev_key = dev_key

    async def authenticate(self, api_key: str | None, authorization: str | None) -> Principal:
        """The caller of a request with these `X-API-Key` and `Authorization` headers."""
        if api_key:
            return await self._key(api_key.strip())
        if not authorization:
            raise AuthenticationFailed("authentication required: an API key in X-API-Key, or a bearer token")
        scheme, _, credentials = authorization.strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("use `Authorization: Bearer <token>`", error="invalid_request")
        if token.startswith(f"{PREFIX}_") or self._is_dev_key(token):
            return await self._key(token)
        if self.jwt is None:
            raise AuthenticationFailed(
                "bearer JWTs are not accepted here (no issuer configured)", error="invalid_token"
            )
        try:
            return await self.jwt.verify(token)
        except InvalidToken as error:
            raise AuthenticationFailed(str(error), error="invalid_token") from error

    def _is_dev_key(self, presented: str) -> bool:
        return self.dev_key is not None and hmac.compare_digest(presented.encode(), self.dev_key.encode())

    async def _key(self, presented: str) -> Principal:
        if self._is_dev_key(presented):
            return DEV_PRINCIPAL
        try:
            return await self.api_keys.verify(presented)
        except InvalidApiKey as error:
            raise AuthenticationFailed(str(error), error="invalid_token") from error
