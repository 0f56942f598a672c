"""Bulk import: FHIR Bulk Data `$export` and NDJSON or Bundle files, into the patient store.

Streamed in batches, each committed with its progress, so an interrupted import resumes where it
stopped. Nothing fires journeys unless the import asks for it."""
