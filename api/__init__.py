"""The HTTP API: app factory, dependencies, one router per resource under `api/routes/`."""
