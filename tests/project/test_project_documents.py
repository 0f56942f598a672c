"""CONTRIBUTING.md and SECURITY.md name real files, folders and tests: a rename that leaves them behind
fails here."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

DOCUMENTS = ["CONTRIBUTING.md", "SECURITY.md"]

_CODE = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"^[\w.-]+(/[\w.*-]+)*/?$")
_TOP = (
    "aftercare/",
    "workflows/",
    "activities/",
    "api/",
    "models/",
    "journeys/",
    "tests/",
    "bench/",
    "tools/",
)
# Paths the documents give as examples or that exist only once made.
_EXAMPLES = (
    "console/",
    "build/",
    "tests/aftercare/db/releases/x.y.z.sql",
    "activities/messaging/<provider>.py",
)


def _named(document: str) -> list[str]:
    spans = _CODE.findall((REPO / document).read_text())
    spans += re.findall(r"^([\w./-]+/)\s{2,}", (REPO / document).read_text(), re.MULTILINE)  # the picture
    words = [word for span in spans for word in span.split()]
    return [word.rstrip(",.;:)") for word in words]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_repository_path_named_exists(document: str) -> None:
    paths = {
        word.split("::")[0]
        for word in _named(document)
        if word.startswith(_TOP) and _PATH.match(word.split("::")[0]) and not word.startswith(_EXAMPLES)
    }
    assert paths, document
    missing = sorted(p for p in paths if not list(REPO.glob(p.rstrip("/"))))
    assert missing == []


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_test_named_exists(document: str) -> None:
    named = set(re.findall(r"\btest_\w+(?=`|::|\b)", (REPO / document).read_text()))
    files = {path.stem for path in (REPO / "tests").rglob("test_*.py")}
    source = "\n".join(path.read_text() for path in (REPO / "tests").rglob("*.py"))
    functions = set(re.findall(r"def (test_\w+)", source))
    assert sorted(name for name in named if name not in files and name not in functions) == []
