"""Contracts: journey and template definitions, Temporal inputs and results, API schemas, ORM tables."""
