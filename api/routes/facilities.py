"""Facilities of the hospital group: hospitals, clinics and practices, as a tree."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from aftercare.security.principal import Principal
from aftercare.store.facilities import (
    FacilityConflict,
    create_facility,
    delete_facility,
    list_facilities,
    subtree,
    update_facility,
)
from api.deps import SessionDep
from api.security import CurrentPrincipal
from models.facility_api import FacilityList, FacilityRequest, FacilityUpdate, FacilityView
from models.facility_tables import Facility

router = APIRouter(prefix="/v1/facilities", tags=["facilities"])


def _view(row: Facility) -> FacilityView:
    return FacilityView.model_validate(row, from_attributes=True)


def _stored(body: FacilityRequest) -> dict[str, object]:
    values = body.model_dump(mode="json", exclude={"senders"})
    values["senders"] = body.senders.model_dump(by_alias=True, exclude_none=True)
    return values


async def _reached(session: SessionDep, principal: Principal, key: str) -> tuple[Facility, set[str] | None]:
    """The facility, if the caller reaches it (404 otherwise: another's is not confirmed), and the
    caller's reach (None: the whole group)."""
    rows = await list_facilities(session)
    reach = subtree(rows, principal.facilities) if principal.facilities else None
    row = next((row for row in rows if row.key == key), None)
    if row is None or (reach is not None and key not in reach):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no facility {key!r}")
    return row, reach


@router.post("", response_model=FacilityView, status_code=status.HTTP_201_CREATED)
async def make_facility(
    body: FacilityRequest, session: SessionDep, principal: CurrentPrincipal
) -> FacilityView:
    """Add a facility; a caller limited to some facilities adds only below them."""
    values = _stored(body)
    async with session.begin():
        if principal.facilities:
            reach = subtree(await list_facilities(session), principal.facilities)
            if body.parent not in reach:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, "a facility can only be added below the caller's facilities"
                )
        try:
            row = await create_facility(session, values)
        except FacilityConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        return _view(row)


@router.get("", response_model=FacilityList)
async def get_facilities(session: SessionDep, principal: CurrentPrincipal) -> FacilityList:
    """The facilities the caller reaches (the whole group for its administrators)."""
    async with session.begin():
        rows = await list_facilities(session)
    if principal.facilities:
        reach = subtree(rows, principal.facilities)
        rows = [row for row in rows if row.key in reach]
    return FacilityList(items=[_view(row) for row in rows])


@router.patch("/{key}", response_model=FacilityView)
async def change_facility(
    key: str, body: FacilityUpdate, session: SessionDep, principal: CurrentPrincipal
) -> FacilityView:
    """Change a facility's settings (what is sent changes; the key stays); moving it below another
    facility keeps the tree a tree, and a caller limited to some facilities moves it only within them."""
    async with session.begin():
        row, reach = await _reached(session, principal, key)
        current = _view(row).model_dump(mode="json", by_alias=True, exclude={"created_at"})
        changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        try:
            merged = FacilityRequest.model_validate({**current, **changes})
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False, include_context=False)) from error
        if reach is not None and merged.parent != row.parent and merged.parent not in reach:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "a facility can only be moved below the caller's facilities"
            )
        try:
            row = await update_facility(session, row, _stored(merged))
        except FacilityConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        return _view(row)


@router.delete(
    "/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "records still belong to the facility (the answer names them)"}},
)
async def remove_facility(key: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Remove a facility that holds nothing: no facility below it, patients, definitions, FHIR sources,
    enrollments, tasks, decisions, messages or API keys (409 names what it still holds)."""
    try:
        async with session.begin():
            row, _ = await _reached(session, principal, key)
            await delete_facility(session, row)
    except FacilityConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except IntegrityError as error:  # something written meanwhile still names it
        raise HTTPException(status.HTTP_409_CONFLICT, f"records still belong to facility {key!r}") from error
    return Response(status_code=status.HTTP_204_NO_CONTENT)
