"""Keeping the patient store in step with FHIR servers (notifications, polling, bulk export).

Subscription notifications in every standard shape, polling by `_lastUpdated`, bulk export, and
registering subscriptions."""
