"""API keys for system-to-system callers (clinical systems, FHIR servers): make, list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.security.api_keys import create_api_key, revoke_api_key
from aftercare.security.principal import Principal
from aftercare.store.facilities import list_facilities, subtree
from api.deps import ServicesDep, SessionDep
from api.security import CurrentPrincipal
from models.security_api import ApiKeyCreated, ApiKeyList, ApiKeyRequest, ApiKeyView
from models.security_tables import ApiKey

router = APIRouter(prefix="/v1/api-keys", tags=["security"])


def _view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView.model_validate(row, from_attributes=True)


async def _check_reach(session: AsyncSession, principal: Principal, asked: list[str]) -> None:
    """Facilities must exist; a caller limited to some facilities grants only within them."""
    facilities = await list_facilities(session)
    unknown = sorted(set(asked) - {facility.key for facility in facilities})
    if unknown:
        raise HTTPException(422, f"unknown facilities: {', '.join(unknown)}")
    if principal.facilities:
        reach = subtree(facilities, principal.facilities)
        if not asked or not set(asked) <= reach:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "a key can only be granted facilities within the caller's"
            )


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def make_key(body: ApiKeyRequest, session: SessionDep, principal: CurrentPrincipal) -> ApiKeyCreated:
    """A new key; its secret is in this answer only."""
    async with session.begin():
        await _check_reach(session, principal, body.facilities)
        made = await create_api_key(
            session,
            name=body.name,
            roles=body.roles,
            scopes=body.scopes,
            created_by=principal.subject,
            expires_at=body.expires_at,
            facilities=body.facilities,
        )
        view = _view(made.row)
    return ApiKeyCreated(**view.model_dump(), key=made.secret)


@router.get("", response_model=ApiKeyList)
async def list_keys(
    session: SessionDep, include_revoked: Annotated[bool, Query(description="list revoked keys too")] = False
) -> ApiKeyList:
    """Keys, newest first, without their secrets."""
    statement = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return ApiKeyList(items=[_view(row) for row in await session.scalars(statement)])


@router.delete("/{key_id}", response_model=ApiKeyView)
async def revoke_key(key_id: str, session: SessionDep, services: ServicesDep) -> ApiKeyView:
    """Revoke a key: refused at once by this process, by the others within `AUTH_API_KEY_CACHE_SECONDS`."""
    async with session.begin():
        row = await revoke_api_key(session, key_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API key {key_id!r}")
        view = _view(row)
    services.authenticator.api_keys.forget(key_id)
    return view
