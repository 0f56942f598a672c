"""docker-compose.yml cannot run here (no Docker engine), so it is validated: against the Compose
Specification's JSON schema (vendored from docker-compose 1.29.2, Apache-2.0) and against what the
product needs from it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aftercare.cli import _parser
from tests.conftest import REPO

SCHEMA = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_the_compose_file_follows_the_compose_specification() -> None:
    jsonschema.Draft201909Validator(SCHEMA).validate(COMPOSE)


def test_the_schema_rejects_a_broken_file() -> None:
    broken = {"services": {"api": {"image": "x", "depends_on": {"db": {"condition": "whenever"}}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(SCHEMA).validate(broken)


def test_the_stack_has_every_part_of_production() -> None:
    assert {"postgresql", "temporal", "temporal-ui", "api", "worker", "migrate"} <= set(SERVICES)
    assert SERVICES["temporal"]["environment"]["DB"] == "postgres12"
    assert SERVICES["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgresql"


def test_images_are_official_and_pinned() -> None:
    for name in ("postgresql", "temporal", "temporal-ui"):
        image = SERVICES[name]["image"]
        assert re.match(r"^(postgres|temporalio/[a-z-]+):\d+(\.\d+)+$", image), image


def test_every_dependency_names_a_service() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", []):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"


def test_aftercare_services_run_commands_the_cli_has_and_get_their_settings() -> None:
    subcommands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for name in ("api", "worker", "migrate"):
        service = SERVICES[name]
        assert service["build"] == "."
        assert service["command"][0] == "aftercare"
        assert service["command"][1] in subcommands
        environment = service["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert SERVICES["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_no_secret_is_written_into_the_file() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|TOKEN|API_KEY|PWD)\s*:", line):
            assert "${" in line, line


def test_the_dockerfile_builds_the_package_and_runs_unprivileged() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.MULTILINE)
    assert "pip install ." in dockerfile
    assert re.search(r"^USER aftercare$", dockerfile, re.MULTILINE)
    for folder in ("aftercare", "activities", "api", "models", "workflows", "journeys"):
        assert f"COPY {folder} ./{folder}" in dockerfile
        assert (REPO / folder).is_dir()
