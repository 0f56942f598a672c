"""OAuth 2.0 bearer JWTs, validated against the configured issuer's JWKS: signature, issuer, audience,
expiry and not-before (with the configured clock skew). The JWKS comes from `AUTH_JWT_JWKS_URL`, or
from the issuer's `.well-known/openid-configuration`; it is cached, refreshed hourly, and fetched again
once when a token names a key id it does not hold (a key rotation at the issuer)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from aftercare.security.principal import Principal, PrincipalKind
from aftercare.settings import Settings
from models.roles import parse_facilities, parse_roles

_JWKS_MAX_AGE_SECONDS = 3600.0
_UNKNOWN_KID_REFETCH_SECONDS = 10.0
_SYMMETRIC = frozenset({"HS256", "HS384", "HS512", "none"})


class InvalidToken(ValueError):
    """The token does not authenticate; the message says why (it goes into `WWW-Authenticate`)."""


class JwksUnavailable(RuntimeError):
    """The issuer's keys could not be fetched."""


@dataclass(frozen=True)
class JwtConfig:
    """What a token must satisfy, and where its roles are."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str | None
    leeway_seconds: int
    roles_claim: str
    subject_claim: str
    algorithms: tuple[str, ...]
    facilities_claim: str = "facilities"

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtConfig | None:
        """The settings' JWT configuration; None when no issuer is configured."""
        if not settings.auth_jwt_issuer:
            return None
        return cls(
            issuer=settings.auth_jwt_issuer,
            audiences=tuple(settings.jwt_audiences),
            jwks_url=settings.auth_jwt_jwks_url,
            leeway_seconds=settings.auth_jwt_leeway_seconds,
            roles_claim=settings.auth_jwt_roles_claim,
            subject_claim=settings.auth_jwt_subject_claim,
            # Symmetric algorithms never verify against a JWKS of public keys.
            algorithms=tuple(name for name in settings.auth_jwt_algorithms if name not in _SYMMETRIC),
            facilities_claim=settings.auth_jwt_facilities_claim,
        )


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (`realm_access.roles`)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class JwtVerifier:
    """Validates bearer JWTs; one per process, sharing the cached JWKS."""

    def __init__(self, config: JwtConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._jwks_url = config.jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        """The token's principal; `InvalidToken` or `JwksUnavailable` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("the token is not a JWT") from error
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise InvalidToken(f"the token's algorithm {algorithm!r} is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=list(self.config.audiences),
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken("the token is not meant for this audience") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidToken("the token comes from another issuer") from error
        except jwt.ImmatureSignatureError as error:
            raise InvalidToken("the token is not valid yet") from error
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token is invalid: {error}") from error
        subject = claim_at(claims, self.config.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise InvalidToken(f"the token has no {self.config.subject_claim!r} claim")
        return Principal(
            kind=PrincipalKind.JWT,
            subject=f"jwt:{subject}"[:200],
            roles=parse_roles(claim_at(claims, self.config.roles_claim)),
            facilities=parse_facilities(claim_at(claims, self.config.facilities_claim)),
        )

    async def _key(self, kid: object) -> jwt.PyJWK:
        now = time.monotonic()
        if now - self._fetched > _JWKS_MAX_AGE_SECONDS:
            await self._refresh(now)
        key = self._find(kid)
        if key is None and now - self._fetched > _UNKNOWN_KID_REFETCH_SECONDS:
            await self._refresh(now)
            key = self._find(kid)
        if key is None:
            raise InvalidToken(f"the issuer has no signing key {kid!r}")
        return key

    def _find(self, kid: object) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if isinstance(kid, str) else None

    async def _refresh(self, asked_at: float) -> None:
        async with self._lock:
            if self._fetched >= asked_at:  # another request refreshed meanwhile
                return
            try:
                url = self._jwks_url or await self._discover()
                response = await self._http.get(url)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise JwksUnavailable(f"the issuer's keys could not be fetched: {error}") from error
            keys: dict[str, jwt.PyJWK] = {}
            for index, item in enumerate(document.get("keys", []) if isinstance(document, dict) else []):
                if not isinstance(item, dict) or item.get("use", "sig") != "sig":
                    continue
                try:
                    keys[str(item.get("kid", index))] = jwt.PyJWK(item)
                except jwt.PyJWTError:
                    continue  # a key type or algorithm this process cannot use
            self._keys = keys
            self._fetched = time.monotonic()

    async def _discover(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self._http.get(url)
        response.raise_for_status()
        jwks_uri = response.json().get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError(f"{url} names no jwks_uri")
        self._jwks_url = jwks_uri
        return jwks_uri
