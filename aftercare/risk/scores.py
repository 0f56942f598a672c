"""A risk score as stored and shown: its value, and per component the points and the resources behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Component:
    """One part of a score: what was measured, the points it gave, and the resources it came from."""

    value: Any
    points: int
    basis: list[str] = field(default_factory=list)
    detail: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored and served form."""
        shape: dict[str, Any] = {"value": self.value, "points": self.points, "basis": list(self.basis)}
        if self.detail is not None:
            shape["detail"] = self.detail
        return shape


@dataclass(frozen=True)
class Score:
    """A score of one discharge (`encounter_id`), made by `algorithm` from its components."""

    score: str
    algorithm: str
    encounter_id: str
    components: dict[str, Component]

    @property
    def value(self) -> int:
        """The sum of the components' points."""
        return sum(component.points for component in self.components.values())

    def components_json(self) -> dict[str, Any]:
        """The components in their stored form."""
        return {name: component.as_json() for name, component in self.components.items()}


def ordered_components(score: str, components: dict[str, Any]) -> dict[str, Any]:
    """Stored components in the order of the score's name (L, A, C, E; H, O, S, P, I, T, A), which JSONB
    does not keep."""
    return {name: components[name] for name in sorted(components, key=score.upper().find)}
