"""FHIR handling: validation, bundles, references, FHIRPath and the `Patient` → profile mapping.

The one place that imports fhir.resources."""
