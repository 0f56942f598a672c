"""Security: who is calling (API keys, JWTs, the development key), the roles and their permissions,
payload encryption for Temporal, rate limits and the audit trail. See README "Security"."""
