"""What activities share when they read an enrollment's variables: permanent failures say so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import ApplicationError

from aftercare.journey_variables import JourneyVariables, PatientNotFoundError, load_journey_variables
from aftercare.templating import TemplateRenderError, render
from models.temporal import ExpressionScope


async def load_variables(session: AsyncSession, scope: ExpressionScope, **options: Any) -> JourneyVariables:
    """The enrollment's variables; a patient missing from the store is a permanent failure."""
    try:
        return await load_journey_variables(session, scope, **options)
    except PatientNotFoundError as error:
        raise ApplicationError(str(error), type="PatientNotFound", non_retryable=True) from error


def render_or_fail(source: str, names: Mapping[str, Any], what: str) -> str:
    """Render a template; one that cannot render is a permanent failure naming `what` it was."""
    try:
        return render(source, names)
    except TemplateRenderError as error:
        raise ApplicationError(
            f"{what} could not be rendered: {error}", type="TemplateRenderError", non_retryable=True
        ) from error
