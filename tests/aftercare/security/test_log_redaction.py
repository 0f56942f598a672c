"""Credentials never reach the logs, whoever logs them."""

from __future__ import annotations

import io
import logging

from aftercare.logs import JsonFormatter, RedactCredentials


def test_api_keys_and_bearer_tokens_are_redacted_from_log_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactCredentials())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("called with %s", "X-API-Key: ak_0123abcd_s3cr3tS3cr3tS3cr3t-_x")
        logger.warning("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "s3cr3t" not in written
    assert "eyJhbGci" not in written
    assert written.count("[redacted]") == 2
