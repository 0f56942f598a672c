"""Clinical facts: FHIR resources normalised into rows that answer clinical questions with plain SQL
(active conditions, the latest value of a code, admissions and discharges)."""
