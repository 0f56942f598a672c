"""Aftercare: durable post-discharge patient outreach on Temporal, FHIR and FastAPI."""

# SemVer over the public surface: the journey, template and segment formats and the HTTP API
# (CONTRIBUTING.md, "Versions"). Bump it with a CHANGELOG.md entry; `make release-check` checks both.
__version__ = "0.1.0"
