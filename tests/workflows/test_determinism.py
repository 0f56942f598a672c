"""Workflow code (the workflows and the code journeys they run) never reads the clock, the random
generator or fresh UUIDs directly. Production workers run it outside Temporal's sandbox
(WORKFLOW_SANDBOX): this check and the suite's sandboxed workers are what catch such a call."""

from __future__ import annotations

import re

from tests.conftest import REPO

FORBIDDEN = re.compile(
    r"datetime\.now\(|datetime\.utcnow\(|uuid\.uuid4\(|\brandom\.|time\.time\(|time\.sleep\("
)


def test_workflow_modules_use_only_the_deterministic_workflow_apis() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for package in ("workflows", "journeys/code")
        for path in sorted((REPO / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
