"""CHANGELOG.md read as data: its sections, their dates and the database migrations each one names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"

_SECTION = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.MULTILINE)
_REVISION = re.compile(r"`(\w+)`")
_HEAD = re.compile(r"head(?: stays)? `(\w+)`")


@dataclass(frozen=True)
class Section:
    """One `## [...]` section: `Unreleased` or a released version with its date."""

    name: str
    date: str | None
    text: str

    @property
    def migrations_paragraph(self) -> str:
        """The paragraph starting `Database migrations:` (empty when there is none)."""
        paragraphs = re.split(r"\n\s*\n", self.text)
        found = [p for p in paragraphs if p.lstrip().startswith("Database migrations:")]
        return " ".join(found[0].split()) if found else ""

    @property
    def migrations(self) -> list[str]:
        """The revisions the section adds, in the order it names them."""
        paragraph = self.migrations_paragraph
        head = _HEAD.search(paragraph)
        named = _REVISION.findall(paragraph[: head.start()] if head else paragraph)
        return named

    @property
    def head(self) -> str | None:
        """The revision a database of this section is at."""
        found = _HEAD.search(self.migrations_paragraph)
        return found.group(1) if found else None


def sections(text: str | None = None) -> list[Section]:
    """The sections, newest first, as written."""
    text = CHANGELOG.read_text() if text is None else text
    matches = list(_SECTION.finditer(text))
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [Section(m["name"], m["date"], text[m.end() : end]) for m, end in zip(matches, ends, strict=True)]


def releases() -> list[Section]:
    """The released versions, newest first."""
    return [s for s in sections() if s.name != "Unreleased"]
