"""Repository tools: dependency lists and licences, SBOMs.

Run them from the repository root: `python -m tools.sbom`, `python -m tools.dependencies`.
"""
