"""What can go wrong talking to a FHIR server, as exceptions callers can tell apart.

Messages carry the HTTP status, the resource path and the server's OperationOutcome diagnostics; never a
token, a secret or a resource's contents.
"""

from __future__ import annotations

import json
from typing import Any


class FhirClientError(Exception):
    """A FHIR interaction failed. `status` is the HTTP status (None without an answer); `issues` are the
    diagnostics of the OperationOutcome the server sent, when it sent one."""

    def __init__(self, message: str, *, status: int | None = None, issues: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.issues = issues or []

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}: {'; '.join(self.issues)}" if self.issues else message


class FhirNotFound(FhirClientError):
    """The resource does not exist (404) or was deleted (410)."""


class FhirAuthError(FhirClientError):
    """The server refused our credentials (401/403, after getting a fresh token), or the token endpoint
    refused to issue one."""


class FhirUnavailable(FhirClientError):
    """The server was busy, failing or unreachable on every attempt (429, 5xx, network errors).
    `retry_after` is the wait in seconds the server last asked for, when it asked."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        issues: list[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, issues=issues)
        self.retry_after = retry_after


class FhirNotSupported(FhirClientError):
    """The server does not offer the operation ($everything, $export, ...): 404/405/501 on it."""


class FhirInvalidResource(FhirClientError):
    """A resource is not valid FHIR for the release in use. `problems` are (element path, message) pairs;
    the message names the first element."""

    def __init__(self, message: str, *, problems: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.problems = problems

    @property
    def element(self) -> str:
        """The path of the first invalid element, e.g. `Observation.status`."""
        return self.problems[0][0] if self.problems else ""


class FhirConfigError(ValueError):
    """A FHIR source is configured wrongly or a secret it names is missing. The message names the
    setting, variable or file; never the secret."""


def outcome_issues(body: bytes) -> list[str]:
    """The diagnostics (or details text, or code) of each issue in an OperationOutcome body; empty when
    the body is not one."""
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict) or document.get("resourceType") != "OperationOutcome":
        return []
    issues = []
    for issue in document.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
        if isinstance(text, str) and text:
            issues.append(text)
    return issues
