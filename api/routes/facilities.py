"""Facilities of the hospital group: hospitals, clinics and practices, as a tree."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from aftercare.store.facilities import FacilityConflict, create_facility, list_facilities, subtree
from api.deps import SessionDep
from api.security import CurrentPrincipal
from models.facility_api import FacilityList, FacilityRequest, FacilityView
from models.facility_tables import Facility

router = APIRouter(prefix="/v1/facilities", tags=["facilities"])


def _view(row: Facility) -> FacilityView:
    return FacilityView.model_validate(row, from_attributes=True)


@router.post("", response_model=FacilityView, status_code=status.HTTP_201_CREATED)
async def make_facility(
    body: FacilityRequest, session: SessionDep, principal: CurrentPrincipal
) -> FacilityView:
    """Add a facility; a caller limited to some facilities adds only below them."""
    values = body.model_dump(mode="json", exclude={"senders"})
    values["senders"] = body.senders.model_dump(by_alias=True, exclude_none=True)
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
