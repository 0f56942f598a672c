"""HL7 v2 ADT feeds: messages read from MLLP, mapped to FHIR R4 and handed to the FHIR ingest path."""
