"""Readmission risk: the LACE index (with its Charlson comorbidity part), kept per discharge.

Computed from a patient's FHIR data, explainable component by component."""
