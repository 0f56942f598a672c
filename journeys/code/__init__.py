"""Journeys written in Python. Import each module here so it registers itself."""

from journeys.code import discharge_callback

__all__ = ["discharge_callback"]
