"""Plain ASGI middleware of the API: security headers, CORS by path, the audit trail."""
