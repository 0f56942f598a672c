"""The Python distributions Aftercare needs at run time, as installed here: the closure of the
`aftercare` package's requirements (with the extras they ask for), without the test extras.

`python -m tools.dependencies` prints them as pinned requirements: what the Dockerfile's `pip install .`
installs, at the versions this environment resolved. `make sbom` builds the image's SBOM from that list;
tests/project/test_dependency_licences.py checks their licences.
"""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Licence review. tests/project/test_dependency_licences.py refuses a runtime package whose licence is
# incompatible with Apache-2.0 (GPL, AGPL) or unclear; these are the packages a person has checked.

# LGPL libraries that Aftercare uses unmodified, through their public API, installed from PyPI as packages
# of their own (never copied into this repository): the LGPL allows that in an Apache-2.0 project.
LGPL_REVIEWED = {
    "psycopg": "LGPL-3.0-only: the PostgreSQL driver behind SQLAlchemy, used as published",
    "psycopg-binary": "LGPL-3.0-only: psycopg's compiled speed-ups (the psycopg[binary] extra)",
}

# Packages whose metadata states no licence a tool can read as SPDX: the licence found by reading the
# package (SPDX id, where it was found). The SBOMs record these as `concluded` licences.
CONCLUDED_LICENCES = {
    "fhirpathpy": ("MIT", "the wheel's licenses/LICENSE.md; its metadata has no License field or classifier"),
    "pgserver": (
        "Apache-2.0",
        "the wheel's LICENSE; it bundles PostgreSQL's binaries under the (permissive) PostgreSQL Licence; "
        "used by `aftercare dev` and the tests, never in production",
    ),
    "antlr4-python3-runtime": ("BSD-3-Clause", "metadata says 'BSD'; the ANTLR 4 runtime is BSD-3-Clause"),
    "protobuf": ("BSD-3-Clause", "metadata says '3-Clause BSD License'; the wheel's LICENSE is BSD-3-Clause"),
}


def runtime_distributions(root: str = "aftercare") -> dict[str, importlib.metadata.Distribution]:
    """Every installed distribution the root needs to run, by canonical name, the root excluded."""
    found: dict[str, importlib.metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    pending: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if key in extras_seen and extras <= extras_seen[key]:
            continue
        extras_seen.setdefault(key, set()).update(extras)
        distribution = importlib.metadata.distribution(name)
        if key != canonicalize_name(root):
            found[key] = distribution
        for line in distribution.requires or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(e) for e in environments):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def pinned_requirements(root: str = "aftercare") -> list[str]:
    """`name==version` for each runtime distribution, sorted by name."""
    distributions = runtime_distributions(root)
    return [f"{name}=={distributions[name].version}" for name in sorted(distributions)]


if __name__ == "__main__":
    sys.stdout.write("".join(f"{line}\n" for line in pinned_requirements()))
