"""`make sbom` describes the environment and the image's Python packages; CI builds and validates it
(tools/sbom.py). These checks skip the schema validation, which takes the time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

import aftercare
from tests.conftest import REPO
from tools.dependencies import runtime_distributions
from tools.sbom import environment_sbom, image_sbom, main


@pytest.fixture(scope="module")
def sboms() -> tuple[dict[str, Any], dict[str, Any]]:
    """The environment's SBOM and the image's."""
    environment = environment_sbom(aftercare.__version__)
    return environment, image_sbom(environment, set(runtime_distributions()))


def _names(sbom: dict[str, Any]) -> set[str]:
    return {canonicalize_name(component["name"]) for component in sbom["components"]}


def test_the_image_sbom_holds_exactly_the_runtime_packages(sboms: tuple[dict, dict]) -> None:
    environment, image = sboms
    assert _names(image) == set(runtime_distributions())
    assert {"pytest", "ruff", "mypy", "playwright", "cyclonedx-bom"} <= _names(environment) - _names(image)
    scope = {p["name"]: p["value"] for p in image["metadata"]["properties"]}["aftercare:sbom:scope"]
    assert "not scanned from a built image" in scope


def test_both_name_aftercare_at_its_version_as_the_root(sboms: tuple[dict, dict]) -> None:
    for sbom in sboms:
        root = sbom["metadata"]["component"]
        assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.6")
        assert (root["name"], root["version"]) == ("aftercare", aftercare.__version__)
        assert root["licenses"][0]["license"]["id"] == "Apache-2.0"


def test_every_image_package_has_a_licence_and_every_link_a_component(sboms: tuple[dict, dict]) -> None:
    _, image = sboms
    assert [c["name"] for c in image["components"] if not c.get("licenses")] == []
    references = {c["bom-ref"] for c in image["components"]} | {"root-component"}
    for dependency in image["dependencies"]:
        assert {dependency["ref"], *dependency.get("dependsOn", [])} <= references


def test_make_sbom_writes_the_files(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--no-validate"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "environment.cdx.json",
        "image-requirements.txt",
        "image.cdx.json",
    ]
    pinned = (tmp_path / "image-requirements.txt").read_text().splitlines()
    assert {canonicalize_name(line.split("==")[0]) for line in pinned} == set(runtime_distributions())
    makefile = (REPO / "Makefile").read_text()
    assert "\t$(BIN)/python -m tools.sbom build/sbom\n" in makefile
