"""No Python package Aftercare needs at run time carries a licence incompatible with Apache-2.0.

The packages are the runtime closure of `aftercare` (tools/dependencies.py: what the image installs, test
extras left out); their licences are what `pip-licenses` reads from their metadata and classifiers.
GPL and AGPL (and other strong copyleft) fail. LGPL passes only for the libraries in LGPL_REVIEWED. A
licence the metadata does not state clearly fails until someone reads the package's licence file and
adds what they found to CONCLUDED_LICENCES; both lists are in tools/dependencies.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tools.dependencies import CONCLUDED_LICENCES, LGPL_REVIEWED, runtime_distributions

_PERMISSIVE = re.compile(
    r"^(MIT(-0|-CMU)?( License)?|BSD( License)?|BSD[- ][23]-Clause( License)?|[23]-Clause BSD License|0BSD"
    r"|ISC( License)?|Apache( Software License|-2\.0| 2\.0| License,? (Version )?2\.0)|PSF-2\.0"
    r"|Python Software Foundation License|MPL-2\.0|Mozilla Public License 2\.0 \(MPL 2\.0\)"
    r"|(The )?Unlicense|Zlib|CC0-1\.0|HPND|PostgreSQL( License)?)$",
    re.IGNORECASE,
)
_LESSER = re.compile(r"\bLGPL|Lesser General Public|Library General Public", re.IGNORECASE)
_STRONG_COPYLEFT = re.compile(
    r"\bA?GPL|GNU General Public|Affero|SSPL|EUPL|OSL-|Commons Clause", re.IGNORECASE
)


def licence_verdict(name: str, licence: str) -> str | None:
    """Why the package's licence is not acceptable, or None when it is."""
    if name in CONCLUDED_LICENCES:
        licence = CONCLUDED_LICENCES[name][0]
    alternatives = [_unwrap(a) for a in re.split(r"\s+OR\s+", _unwrap(licence))]
    reasons = []
    for alternative in alternatives:
        parts = [_unwrap(p) for p in re.split(r"\s+AND\s+|;\s*", alternative) if p.strip()]
        problems = [_part_problem(name, part) for part in parts] or ["no licence stated"]
        if not any(problems):
            return None
        reasons.extend(p for p in problems if p)
    return "; ".join(reasons)


def _unwrap(expression: str) -> str:
    expression = expression.strip()
    return expression[1:-1].strip() if expression.startswith("(") and expression.endswith(")") else expression


def _part_problem(name: str, part: str) -> str | None:
    if _LESSER.search(part):
        return None if name in LGPL_REVIEWED else f"{part}: LGPL, not reviewed (LGPL_REVIEWED)"
    if _STRONG_COPYLEFT.search(part):
        return f"{part}: incompatible with Apache-2.0"
    if _PERMISSIVE.match(part):
        return None
    return f"{part!r}: unclear, read the package's licence file (CONCLUDED_LICENCES)"


@pytest.fixture(scope="module")
def runtime_licences() -> dict[str, str]:
    """The runtime packages' licences as pip-licenses reads them, by canonical name."""
    names = sorted(runtime_distributions())
    answer = subprocess.run(
        [sys.executable, "-m", "piplicenses", "--from=mixed", "--format=json", "--packages", *names],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {re.sub(r"[-_.]+", "-", row["Name"]).lower(): row["License"] for row in json.loads(answer.stdout)}
    assert set(found) == set(names), set(names) ^ set(found)
    return found


def test_no_runtime_dependency_has_a_licence_incompatible_with_apache_2_0(
    runtime_licences: dict[str, str],
) -> None:
    problems = {name: licence_verdict(name, licence) for name, licence in runtime_licences.items()}
    assert {name: problem for name, problem in problems.items() if problem} == {}


def test_every_reviewed_package_is_still_a_runtime_dependency(runtime_licences: dict[str, str]) -> None:
    assert set(LGPL_REVIEWED) | set(CONCLUDED_LICENCES) <= set(runtime_licences)


@pytest.mark.parametrize(
    ("licence", "problem"),
    [
        ("GNU General Public License v3 (GPLv3)", "incompatible with Apache-2.0"),
        ("AGPL-3.0-or-later", "incompatible with Apache-2.0"),
        ("GPL-2.0-only AND MIT", "incompatible with Apache-2.0"),
        ("LGPL-2.1-or-later", "LGPL, not reviewed"),
        ("GNU Library or Lesser General Public License (LGPL)", "LGPL, not reviewed"),
        ("UNKNOWN", "unclear"),
        ("Proprietary", "unclear"),
    ],
)
def test_copyleft_and_unclear_licences_are_refused(licence: str, problem: str) -> None:
    verdict = licence_verdict("some-package", licence)
    assert verdict is not None
    assert problem in verdict


@pytest.mark.parametrize(
    "licence",
    [
        "MIT",
        "Apache-2.0 OR BSD-3-Clause",
        "Apache Software License; BSD License",
        "Apache License, Version 2.0",
        "GPL-2.0 OR MIT",
        "MPL-2.0",
    ],
)
def test_permissive_licences_and_a_permissive_choice_pass(licence: str) -> None:
    assert licence_verdict("some-package", licence) is None
