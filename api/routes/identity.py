"""Identity resolution: a person's records and merges, manual merges, reversals and the review queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from aftercare.store.identity import (
    AlreadyOnePerson,
    MergeNotReversible,
    merge_records,
    open_candidates,
    person_of,
    reverse_merge,
)
from api.deps import SessionDep
from api.routes.patients import identity_view, resolve_person
from models.api import (
    IdentityCandidateList,
    IdentityCandidateView,
    IdentityMergeView,
    IdentityView,
    MergeRequest,
    ReverseMergeRequest,
)

router = APIRouter(tags=["identity"])

MANUAL_RULE = "manual"


@router.get("/v1/patients/{patient_id}/identity", response_model=IdentityView)
async def read_identity(patient_id: str, session: SessionDep) -> IdentityView:
    """The person's records, identifiers and merges (a merged-away id answers for its person)."""
    return await identity_view(session, await resolve_person(session, patient_id))


@router.post("/v1/patients/{patient_id}/merge", response_model=IdentityMergeView, status_code=201)
async def merge_patient(patient_id: str, body: MergeRequest, session: SessionDep) -> IdentityMergeView:
    """Merge the patient `with` (and its linked records) into this patient's person. 404 for an unknown
    patient, 409 when they are one person already."""
    if body.with_ == patient_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "a patient cannot be merged with itself")
    async with session.begin():
        survivor = await resolve_person(session, patient_id)
        if await person_of(session, body.with_) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {body.with_!r}")
        evidence = {"records": [body.with_, patient_id], "fields": [], "reason": body.reason}
        try:
            merge = await merge_records(
                session, survivor, body.with_, rule=MANUAL_RULE, evidence=evidence, by=body.by
            )
        except AlreadyOnePerson as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        view = IdentityMergeView.model_validate(merge)
    return view


@router.post("/v1/identity/merges/{merge_id}/reverse", response_model=IdentityMergeView)
async def reverse(merge_id: int, body: ReverseMergeRequest, session: SessionDep) -> IdentityMergeView:
    """Undo a merge: its records are their own person again. 404 unknown merge; 409 reversed already or a
    later merge moved the same records (reverse that first)."""
    async with session.begin():
        try:
            merge = await reverse_merge(session, merge_id, reason=body.reason, by=body.by)
        except MergeNotReversible as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        if merge is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no merge {merge_id}")
        view = IdentityMergeView.model_validate(merge)
    return view


@router.get("/v1/identity/candidates", response_model=IdentityCandidateList)
async def read_candidates(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> IdentityCandidateList:
    """Possible matches waiting for review, oldest first."""
    rows = await open_candidates(session, limit)
    return IdentityCandidateList(items=[IdentityCandidateView.model_validate(row) for row in rows])
