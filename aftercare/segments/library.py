"""Predefined segments shipped as YAML templates (`aftercare/segments/library/*.yaml`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from models.segment import SegmentDefinition

LIBRARY = Path(__file__).parent / "library"


@cache
def segment_library() -> tuple[SegmentDefinition, ...]:
    """Every predefined segment, validated as a published one would be, by key."""
    return tuple(
        SegmentDefinition.model_validate(yaml.safe_load(path.read_text()))
        for path in sorted(LIBRARY.glob("*.yaml"))
    )


def library_segment(key: str) -> SegmentDefinition | None:
    """One predefined segment by key."""
    return next((segment for segment in segment_library() if segment.key == key), None)
