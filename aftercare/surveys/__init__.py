"""Surveys: FHIR Questionnaires stored and versioned, the patient's form, QuestionnaireResponses."""
