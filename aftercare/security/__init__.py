"""Security: who is calling, what they may do, payload encryption, rate limits and the audit trail.

Callers are API keys, JWTs or the development key; the roles and their permissions themselves are a
contract (`models/roles.py`). See docs/security.md."""
