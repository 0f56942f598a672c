"""Dependency aliases for the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.services import Services


def get_services(request: Request) -> Services:
    """The process's shared services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """A session for the request; the route opens its own transaction."""
    async with services.sessions() as session:
        yield session


def get_temporal(services: ServicesDep) -> Client:
    """The Temporal client."""
    return services.temporal


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
