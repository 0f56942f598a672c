"""The FHIR REST client: reads, searches, writes and Bulk Data export against an EHR's FHIR server.

Authentication (bearer, client credentials, SMART Backend Services), TLS, retries and errors callers can
tell apart, in one place; tokens and secrets are never logged."""
