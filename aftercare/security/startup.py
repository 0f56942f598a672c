"""What must be configured before a process serves: in production, authentication and payload
encryption; everywhere, JWT settings that make sense together. The API and the worker refuse to start,
naming every problem, rather than run half-protected."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.security.codec import CodecKeyError, parse_codec_keys
from aftercare.settings import Settings
from models.security_tables import ApiKey


class StartupRefused(RuntimeError):
    """The configuration is not safe to serve with; the message lists what to set."""


def configuration_problems(settings: Settings) -> list[str]:
    """Problems the settings alone show."""
    problems: list[str] = []
    if bool(settings.auth_jwt_issuer) != bool(settings.jwt_audiences):
        problems.append("AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE go together: set both (or neither)")
    if settings.aftercare_codec_keys is not None:
        try:
            parse_codec_keys(settings.aftercare_codec_keys.get_secret_value())
        except CodecKeyError as error:
            problems.append(f"AFTERCARE_CODEC_KEYS: {error}")
    if settings.development:
        return problems
    if settings.aftercare_dev_api_key is not None:
        problems.append("AFTERCARE_DEV_API_KEY is for development only: unset it in production")
    if settings.aftercare_codec_keys is None:
        problems.append(
            "AFTERCARE_CODEC_KEYS (or AFTERCARE_CODEC_KEYS_FILE) is required in production: Temporal "
            "payloads carry PHI and are encrypted with it"
        )
    return problems


async def api_problems(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """The settings' problems, and in production without JWTs, the lack of any usable API key."""
    problems = configuration_problems(settings)
    if settings.development or settings.auth_jwt_issuer:
        return problems
    async with sessions() as session:
        keys = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
        )
    if not keys:
        problems.append(
            "no way to authenticate: set AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE, or create an API key with "
            "`aftercare api-keys create --name NAME --role admin`"
        )
    return problems


def refuse_if(problems: list[str], process: str) -> None:
    """Raise `StartupRefused` listing the problems, if there are any."""
    if problems:
        raise StartupRefused(f"{process} refuses to start: " + "; ".join(problems))
