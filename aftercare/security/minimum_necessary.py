"""Minimum necessary: who may see which patients a clinical criterion picked, and the small-cell rule
for the counts everyone else sees.

A segment's members are clinical facts about each of them ("latest HbA1c above 9"), so its patient ids
are shown only to callers holding `clinical:read`, the permission the per-patient clinical routes
need. Other callers (marketing) get counts only, and a count from 1 to 10 is not shown at all: `count`
is null and `count_shown` is "<11", so a narrow segment cannot single a patient out. Zero is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aftercare.security.principal import Principal
from models.roles import Permission
from models.small_cells import SMALL_CELL_MAX, SMALL_CELL_SHOWN


@dataclass(frozen=True)
class ShownCount:
    """A count as a caller may see it: exact, or null with `count_shown` "<11"."""

    count: int | None
    count_shown: str


def sees_patients(principal: Principal) -> bool:
    """Whether the caller may see which patients a clinical criterion picked."""
    return principal.can(Permission.CLINICAL_READ)


def shown_count(count: int, *, exact: bool) -> ShownCount:
    """`count` exactly for a caller who sees patients; otherwise with counts 1 to 10 suppressed."""
    if exact or count == 0 or count > SMALL_CELL_MAX:
        return ShownCount(count, str(count))
    return ShownCount(None, SMALL_CELL_SHOWN)


def shown_counts(
    counts: Mapping[str, int], *, exact: bool, prefix: str = ""
) -> tuple[dict[str, int | None], list[str]]:
    """Named counts as a caller may see them, and the names (after `prefix`) of those suppressed."""
    shown = {name: shown_count(value, exact=exact).count for name, value in counts.items()}
    return shown, [f"{prefix}{name}" for name, value in shown.items() if value is None]
