"""Readmission risk: the LACE index (and its Charlson comorbidity part) computed from a patient's FHIR
data, explainable component by component, kept per discharge."""
