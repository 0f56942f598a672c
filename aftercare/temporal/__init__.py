"""Temporal connections: the client factory and search attribute registration."""
