-- A little of what a 0.1.0 database holds (schema head 0003): a patient with a consent, a published
-- journey and template, an enrollment that sent a text and opened a task, an API key and an audit row.
-- tests/aftercare/db/test_release_upgrades.py loads it, upgrades to the newest revision and reads it back.
INSERT INTO patients (id, version_id, given, family, birth_date, phone, phone_status, language, timezone)
VALUES ('release-patient', '1', 'Ada', 'Release', '1960-02-01', '+15555550100', 'valid', 'en', 'America/New_York');

INSERT INTO consent_events (patient_id, channel, purpose, status, source)
VALUES ('release-patient', 'sms', '*', 'granted', 'api');

INSERT INTO journeys (key, version, name, definition, content_hash, entry_event_type)
VALUES ('release-journey', 1, 'Release journey',
        '{"key": "release-journey", "version": 1, "name": "Release journey", "entry": {"event": {"type": "release.test"}}, "steps": [{"id": "done", "type": "end", "outcome": "done"}]}',
        'sha256:release-journey-1', 'release.test');

INSERT INTO templates (key, channel, locale, version, definition, content_hash)
VALUES ('release-template', 'sms', 'en', 1,
        '{"key": "release-template", "channel": "sms", "locale": "en", "body": "Hi {{ patient.given }}"}',
        'sha256:release-template-1');

INSERT INTO enrollments (id, journey_key, journey_version, patient_id, status, current_step, trigger, context,
                         exclusive, once_only, workflow_id)
VALUES ('release-enrollment', 'release-journey', 1, 'release-patient', 'running', 'done',
        '{"type": "release.test"}', '{}', false, false, 'enrollment-release-enrollment');

INSERT INTO messages (id, idempotency_key, patient_id, enrollment_id, journey_key, step_id, channel, "to", body,
                      template_key, template_version, locale, status, provider, provider_message_id, attempts)
VALUES ('release-message', 'release-enrollment:welcome:1', 'release-patient', 'release-enrollment',
        'release-journey', 'welcome', 'sms', '+15555550100', 'Hi Ada', 'release-template', 1, 'en', 'sent',
        'twilio', 'SM00000000000000000000000000000000', 1);

INSERT INTO tasks (id, idempotency_key, queue, title, patient_id, enrollment_id)
VALUES ('release-task', 'release-enrollment:call:1', 'care-coordinators', 'Call Ada', 'release-patient',
        'release-enrollment');

INSERT INTO api_keys (id, name, secret_hash, roles)
VALUES ('releasekey', 'release', 'sha256-of-a-secret', '{admin}');

INSERT INTO audit_events (actor, actor_kind, actor_roles, action, resource_type, resource_id, method, route,
                          status_code)
VALUES ('api_key:release', 'api_key', '{admin}', 'read', 'patient', 'release-patient', 'GET',
        '/v1/patients/{patient_id}', 200);
