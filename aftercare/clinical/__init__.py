"""Clinical facts: FHIR resources normalised into rows that answer clinical questions in plain SQL.

Active conditions, the latest value of a code, admissions and discharges."""
