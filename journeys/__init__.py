"""Journeys that ship with Aftercare: ready-made definitions (the library) and journeys written in Python."""
