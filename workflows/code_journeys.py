"""Journeys written in Python: the registry the enrollment workflow finds them in.

A code journey is a class with a `definition` (a `JourneyDefinition` with `code: true`: key, version,
name, entry, re-entry and exit rules, no steps), the message `templates` it uses, and
`async def run(self, steps)` that calls the step library. It is enrolled, listed, cancelled and
monitored like any definition; changes to a running journey's code go behind `workflow.patched`.

The journeys themselves live above the workflows (`journeys/code/`) and register here when imported;
the composition roots (worker.py, the API through `journeys/sync.py`) import them, so the workflow
layer never imports the journeys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from models.journey import JourneyDefinition
from models.template import TemplateDefinition

if TYPE_CHECKING:
    from workflows.steps import JourneySteps


class CodeJourney(Protocol):
    """What a journey written in Python provides."""

    definition: ClassVar[JourneyDefinition]
    templates: ClassVar[list[TemplateDefinition]]

    async def run(self, steps: JourneySteps) -> str | None:
        """Run the journey; the outcome (or None for `completed`)."""
        ...


J = TypeVar("J", bound=type[CodeJourney])

_REGISTRY: dict[str, type[CodeJourney]] = {}


def register(journey: J) -> J:
    """Class decorator: make a code journey known to the worker and the API."""
    definition = journey.definition
    if not definition.code:
        raise ValueError(f"{journey.__name__}.definition must say `code=True`")
    existing = _REGISTRY.get(definition.key)
    if existing is not None and existing is not journey:
        raise ValueError(f"two code journeys use the key {definition.key!r}")
    _REGISTRY[definition.key] = journey
    return journey


def registered() -> list[type[CodeJourney]]:
    """Every code journey registered in this process."""
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]


def code_journey(key: str) -> CodeJourney:
    """A fresh instance of the code journey registered under `key`.

    A worker without it fails the workflow task (retried until a worker that has the code takes it),
    rather than failing the enrollment.
    """
    journey = _REGISTRY.get(key)
    if journey is None:
        raise LookupError(f"no code journey {key!r} is registered in this worker")
    return journey()
