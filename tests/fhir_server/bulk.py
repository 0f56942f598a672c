"""Bulk Data export on the test server: system, Patient and Group level kick-offs, a job that stays in
progress for a set number of polls, then a manifest whose NDJSON files are split every `max_lines`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.fhir_server.search import SearchError, parse_datetime
from tests.fhir_server.store import Store, format_instant, reference_of


@dataclass
class ExportJob:
    """One export: what was asked, when, how many more polls answer 202, and its files' lines."""

    id: str
    request: str
    transaction_time: str
    polls_left: int
    files: dict[str, list[str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)


class BulkExports:
    """Export jobs by id, with their files."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs: dict[str, ExportJob] = {}

    def kick_off(
        self,
        *,
        request_url: str,
        group_id: str | None,
        patient_level: bool,
        types: list[str] | None,
        since: str | None,
        polls: int,
        max_lines: int | None,
    ) -> ExportJob:
        """Start an export of the current resources (SearchError for a bad `_since`, KeyError for an
        unknown Group); the files are fixed now, as of the transaction time."""
        since_moment: datetime | None = parse_datetime(since)[0] if since else None
        transaction_time = format_instant(self.store.next_instant())
        if group_id is not None:
            group = self.store.get("Group", group_id)
            if group is None:
                raise KeyError(f"Group/{group_id}")
            patients = [
                ref.removeprefix("Patient/")
                for member in group.get("member") or []
                if (ref := reference_of(member.get("entity"))) and ref.startswith("Patient/")
            ]
            resources: Iterable[dict[str, Any]] = _patients_resources(self.store, patients)
        elif patient_level:
            patients = [str(patient["id"]) for patient in self.store.of_type("Patient")]
            resources = _patients_resources(self.store, patients)
        else:
            resources = self.store.all()
        job = ExportJob(str(uuid.uuid4()), request_url, transaction_time, polls)
        by_type: dict[str, list[str]] = {}
        for resource in resources:
            if types and resource["resourceType"] not in types:
                continue
            if since_moment is not None:
                updated = parse_datetime(resource["meta"]["lastUpdated"])[0]
                if updated <= since_moment:
                    continue
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
        for resource_type in sorted(by_type):
            lines = by_type[resource_type]
            size = max_lines or len(lines) or 1
            for number, start in enumerate(range(0, len(lines), size), start=1):
                name = f"{resource_type}.{number:03d}.ndjson"
                job.files[name] = lines[start : start + size]
                job.types[name] = resource_type
        self.jobs[job.id] = job
        return job

    def manifest(self, job: ExportJob, base_url: str, requires_access_token: bool) -> dict[str, Any]:
        """The completed export's manifest."""
        return {
            "transactionTime": job.transaction_time,
            "request": job.request,
            "requiresAccessToken": requires_access_token,
            "output": [
                {
                    "type": job.types[name],
                    "url": f"{base_url}/$export-file/{job.id}/{name}",
                    "count": len(lines),
                }
                for name, lines in job.files.items()
            ],
            "error": [],
        }


def _patients_resources(store: Store, patient_ids: list[str]) -> Iterable[dict[str, Any]]:
    for patient_id in patient_ids:
        yield from store.about_patient(patient_id)


def check_types(value: str | None) -> list[str] | None:
    """The `_type` list, or None; SearchError for an empty name."""
    if not value:
        return None
    types = [name.strip() for name in value.split(",")]
    if not all(types):
        raise SearchError(f"_type={value} names an empty type")
    return types
