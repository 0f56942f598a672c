"""Messaging activities: the send activity, and one module per channel provider."""
