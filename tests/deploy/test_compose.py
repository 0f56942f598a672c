"""docker-compose.yml cannot run here (no Docker engine), so it is validated: against the Compose
Specification's JSON schema (vendored from docker-compose 1.29.2, Apache-2.0) and against what the
product needs from it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import tomllib
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

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
    for name in ("postgresql", "temporal", "temporal-ui", "temporal-schema", "temporal-namespace"):
        image = SERVICES[name]["image"]
        assert re.match(r"^(postgres|temporalio/[a-z-]+):\d+(\.\d+)+$", image), image


def test_temporal_runs_on_the_supported_server_image_after_its_schema_is_set_up() -> None:
    images = {name: service.get("image", "") for name, service in SERVICES.items()}
    assert not any("auto-setup" in image for image in images.values()), "auto-setup is deprecated"
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert images["temporal-schema"].split(":")[1] == images["temporal"].split(":")[1]
    assert SERVICES["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert SERVICES["temporal-namespace"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert SERVICES[name]["depends_on"]["temporal-namespace"]["condition"] == (
            "service_completed_successfully"
        )


def test_the_setup_scripts_the_stack_mounts_exist_and_parse() -> None:
    for name in ("temporal-schema", "temporal-namespace"):
        service = SERVICES[name]
        (mount,) = service["volumes"]
        host, container, _mode = mount.split(":")
        script = REPO / host / Path(service["command"][0]).relative_to(container).as_posix()
        assert script.is_file(), script
        subprocess.run(["sh", "-n", str(script)], check=True)


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
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [
        pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    assert len(packages) >= 8
    for folder in packages:
        assert f"COPY {folder} ./{folder}" in dockerfile, f"the image would lack the {folder} package"
        assert (REPO / folder).is_dir()


async def test_the_namespace_script_registers_the_namespace_once_on_a_real_server(
    dev_server: WorkflowEnvironment,
) -> None:
    from aftercare.devstack.temporal_server import temporal_cli

    namespace = f"compose-{uuid.uuid4().hex[:8]}"
    script = REPO / "deploy" / "temporal" / "scripts" / "create-namespace.sh"
    environment = {
        **os.environ,
        "PATH": f"{Path(temporal_cli()).parent}:{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "DEFAULT_NAMESPACE": namespace,
    }

    def run_script() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(script)], env=environment, capture_output=True, text=True, timeout=120
        )

    first = await asyncio.to_thread(run_script)
    again = await asyncio.to_thread(run_script)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"namespace {namespace} created" in first.stdout
    assert again.returncode == 0
    assert f"namespace {namespace} exists" in again.stdout
