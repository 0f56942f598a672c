"""API keys for system-to-system callers: `ak_<id>_<secret>`. The id is public (it names the key in
listings and the audit trail); only the SHA-256 of the 256-bit secret is stored, and it is compared in
constant time. A lookup is one primary-key read, cached for a few seconds per process, so revocation
takes effect at once in the process that revoked and within the cache time elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.security.principal import Principal, PrincipalKind
from models.roles import Permission, Role, parse_roles
from models.security_api import future_expiry
from models.security_tables import ApiKey

PREFIX = "ak"
_LAST_USED_EVERY_SECONDS = 60.0


class InvalidApiKey(ValueError):
    """The key is malformed, unknown, wrong, expired or revoked (callers are told no more than that)."""


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: `secret` is shown once and never stored."""

    row: ApiKey
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str]:
    """`ak_<id>_<secret>` → (id, secret); `InvalidApiKey` for anything else."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id.isalnum() or len(key_id) > 32 or len(secret) < 16:
        raise InvalidApiKey("not an Aftercare API key")
    return key_id, secret


async def create_api_key(
    session: AsyncSession,
    *,
    name: str,
    roles: Sequence[Role],
    scopes: Sequence[Permission] = (),
    created_by: str | None = None,
    expires_at: datetime | None = None,
    facilities: Sequence[str] = (),
) -> NewApiKey:
    """A new key in the caller's transaction (`ValueError` when `expires_at` has passed)."""
    expires_at = future_expiry(expires_at)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        id=key_id,
        name=name,
        secret_hash=_hash(secret),
        roles=sorted(role.value for role in roles),
        scopes=sorted(scope.value for scope in scopes),
        facilities=sorted(set(facilities)),
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return NewApiKey(row=row, secret=f"{PREFIX}_{key_id}_{secret}")


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    """Mark the key revoked (idempotent); None when there is no such key."""
    row = await session.get(ApiKey, key_id, with_for_update=True)
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def principal_of(row: ApiKey) -> Principal:
    """The caller a stored key stands for."""
    return Principal(
        kind=PrincipalKind.API_KEY,
        subject=f"api_key:{row.name}",
        roles=parse_roles(row.roles),
        scopes=frozenset(row.scopes),
        key_id=row.id,
        facilities=frozenset(row.facilities or ()),
    )


@dataclass
class _Cached:
    secret_hash: str
    principal: Principal | None  # None: revoked
    expires_at: datetime | None
    fetched: float


class ApiKeyVerifier:
    """Checks presented keys against the table, with a short per-process cache."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache_seconds: float = 5.0) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}
        self._last_used: dict[str, float] = {}

    def forget(self, key_id: str) -> None:
        """Drop a cached key (after a revocation in this process)."""
        self._cache.pop(key_id, None)

    async def verify(self, key: str) -> Principal:
        """The key's principal; `InvalidApiKey` when it does not authenticate."""
        key_id, secret = split_key(key)
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is None or now - cached.fetched > self._cache_seconds:
            cached = await self._load(key_id, now)
        presented = _hash(secret)
        if not hmac.compare_digest(presented, cached.secret_hash) or cached.principal is None:
            raise InvalidApiKey("unknown, wrong or revoked API key")
        if cached.expires_at is not None and cached.expires_at <= datetime.now(UTC):
            raise InvalidApiKey("the API key has expired")
        await self._touch(key_id, now)
        return cached.principal

    async def _load(self, key_id: str, now: float) -> _Cached:
        async with self._sessions() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
        if row is None:
            # Compared all the same, so an unknown id costs what a wrong secret costs.
            cached = _Cached(secret_hash="0" * 64, principal=None, expires_at=None, fetched=now)
        else:
            cached = _Cached(
                secret_hash=row.secret_hash,
                principal=None if row.revoked_at is not None else principal_of(row),
                expires_at=row.expires_at,
                fetched=now,
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = cached
        return cached

    async def _touch(self, key_id: str, now: float) -> None:
        """Record use at most once a minute per key and process, so the hot path stays read-only."""
        if now - self._last_used.get(key_id, -_LAST_USED_EVERY_SECONDS) < _LAST_USED_EVERY_SECONDS:
            return
        self._last_used[key_id] = now
        async with self._sessions.begin() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC))
            )


def source_key_name(source_key: str) -> str:
    """The name of the key a FHIR source notifies with."""
    return f"fhir-source:{source_key}"


async def new_source_key(session: AsyncSession, source_key: str, *, created_by: str | None) -> NewApiKey:
    """A fresh notify-only key for a FHIR source's subscriptions (commit it before the server uses it)."""
    return await create_api_key(
        session,
        name=source_key_name(source_key),
        roles=[Role.TRIGGER],
        scopes=[Permission.FHIR_NOTIFY],
        created_by=created_by,
    )


async def revoke_source_keys(session: AsyncSession, source_key: str, *, keep: str | None) -> None:
    """Revoke the source's keys but `keep` (once its subscriptions carry the new one)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.name == source_key_name(source_key), ApiKey.revoked_at.is_(None), ApiKey.id != keep)
        .values(revoked_at=datetime.now(UTC))
    )
