"""Bulk import: FHIR Bulk Data `$export` from a source, and NDJSON or Bundle files, streamed into the
patient store in batches, each committed with its progress so an interrupted import resumes where it
stopped. Nothing fires journeys unless the import asks for it."""
