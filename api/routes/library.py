"""The library of ready-made journeys, installed in one call."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from api.deps import SessionDep
from journeys.catalogue import LibraryEntry, install, library, library_entry
from models.api import LibraryEntryView, LibraryInstalled, LibraryList

router = APIRouter(prefix="/v1/library", tags=["library"])


def _view(entry: LibraryEntry) -> LibraryEntryView:
    journey = entry.journey
    return LibraryEntryView(
        key=entry.key,
        version=journey.version,
        name=entry.name,
        description=entry.description,
        entry=journey.entry.model_dump(mode="json", exclude_none=True) if journey.entry else None,
        templates=sorted({template.key for template in entry.templates}),
    )


@router.get("", response_model=LibraryList)
async def read_library() -> LibraryList:
    """The ready-made journeys: post-discharge follow-up, medication adherence, abnormal lab results,
    appointment reminders, missed appointments, vaccination reminders."""
    return LibraryList(items=[_view(entry) for entry in library()])


@router.post(
    "/{key}/install",
    status_code=status.HTTP_201_CREATED,
    response_model=LibraryInstalled,
    responses={200: {"description": "already installed"}},
)
async def install_journey(key: str, session: SessionDep, response: Response) -> LibraryInstalled:
    """Publish a ready-made journey and its message templates."""
    entry = library_entry(key)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ready-made journey {key!r}")
    async with session.begin():
        outcome = await install(session, entry)
    if outcome == "unchanged":
        response.status_code = status.HTTP_200_OK
    view = _view(entry)
    return LibraryInstalled(
        key=entry.key, version=view.version, templates=view.templates, created=outcome == "created"
    )
