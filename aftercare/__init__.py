"""Aftercare: durable post-discharge patient outreach on Temporal, FHIR and FastAPI."""

__version__ = "0.1.0"
