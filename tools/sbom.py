"""CycloneDX SBOMs (JSON, spec 1.6) of Aftercare's Python packages: `make sbom` runs this
(`python -m tools.sbom [folder]`, default build/sbom/).

- `environment.cdx.json`: every package installed in the environment running this script (`.venv`: the
  runtime packages, the test extras and the tools), by `cyclonedx-py environment`.
- `image.cdx.json`: the Python packages of the container image. There is no Docker engine here, so it is
  not scanned from a built image: it is the environment's SBOM cut down to what the Dockerfile's
  `pip install .` installs (the runtime closure of `aftercare`, tools/dependencies.py), at the versions
  this environment resolved. `image-requirements.txt` lists them pinned. The image's Debian packages
  (the base image, fonts-dejavu-core) are not in it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

import aftercare
from tools.dependencies import CONCLUDED_LICENCES, pinned_requirements, runtime_distributions

REPO = Path(__file__).resolve().parents[1]
IMAGE_SCOPE = (
    "The Python packages `pip install .` installs in the image (Dockerfile): the runtime requirements of "
    "aftercare as resolved in the build environment, not scanned from a built image."
)


def environment_sbom(version: str) -> dict[str, Any]:
    """The SBOM of this environment, its root component being Aftercare at the version."""
    answer = subprocess.run(  # noqa: S603 - this interpreter running cyclonedx-py, fixed arguments
        [
            *(sys.executable, "-m", "cyclonedx_py", "environment", sys.executable),
            *("--pyproject", str(REPO / "pyproject.toml"), "--output-reproducible", "--no-validate"),
            *("--output-format", "JSON", "--spec-version", "1.6", "--output-file", "-"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    sbom: dict[str, Any] = json.loads(answer.stdout)
    root = sbom["metadata"]["component"]
    root["version"] = version  # the version is dynamic in pyproject.toml, which cyclonedx-py reads
    root["purl"] = f"pkg:pypi/aftercare@{version}"
    for component in sbom["components"]:
        concluded = CONCLUDED_LICENCES.get(canonicalize_name(component["name"]))
        if concluded and not component.get("licenses"):
            component["licenses"] = [{"license": {"id": concluded[0], "acknowledgement": "concluded"}}]
    return sbom


def image_sbom(environment: dict[str, Any], runtime: set[str]) -> dict[str, Any]:
    """The environment's SBOM keeping only the runtime packages (canonical names) and their links."""
    sbom: dict[str, Any] = json.loads(json.dumps(environment))
    sbom["components"] = [c for c in sbom["components"] if canonicalize_name(c["name"]) in runtime]
    kept = {c["bom-ref"] for c in sbom["components"]} | {sbom["metadata"]["component"]["bom-ref"]}
    sbom["dependencies"] = [
        {**d, "dependsOn": [ref for ref in d.get("dependsOn", []) if ref in kept]}
        for d in sbom["dependencies"]
        if d["ref"] in kept
    ]
    properties = sbom["metadata"].setdefault("properties", [])
    properties.append({"name": "aftercare:sbom:scope", "value": IMAGE_SCOPE})
    return sbom


def validation_error(sbom: dict[str, Any]) -> str | None:
    """What makes the document invalid CycloneDX 1.6, or None (the strict JSON schema; a few seconds)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom))
    return None if error is None else str(error)


def main(argv: list[str] | None = None) -> int:
    """Write the SBOMs into the folder; exit status 1 when one is not valid CycloneDX."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, nargs="?", default=REPO / "build" / "sbom")
    parser.add_argument("--no-validate", dest="validate", action="store_false")
    arguments = parser.parse_args(argv)

    environment = environment_sbom(aftercare.__version__)
    image = image_sbom(environment, set(runtime_distributions()))
    arguments.folder.mkdir(parents=True, exist_ok=True)
    for name, sbom in (("environment.cdx.json", environment), ("image.cdx.json", image)):
        error = validation_error(sbom) if arguments.validate else None
        if error:
            print(f"{name}: not valid CycloneDX 1.6: {error}", file=sys.stderr)
            return 1
        (arguments.folder / name).write_text(json.dumps(sbom, indent=2) + "\n")
        print(f"{arguments.folder / name}: {len(sbom['components'])} components")
    (arguments.folder / "image-requirements.txt").write_text("".join(f"{r}\n" for r in pinned_requirements()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
