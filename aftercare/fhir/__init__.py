"""FHIR handling: validation (the one place that imports fhir.resources), bundles, references, FHIRPath,
and the mapping from `Patient` to the patient profile."""
