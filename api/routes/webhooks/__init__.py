"""Webhooks from messaging providers, each verified with the provider's own signature scheme."""
