"""Streaming readers: NDJSON files line by line (never loaded whole), Bundle files whole (entries with
`urn:uuid:` references resolved), and directories of both.

A "line" is a non-blank line: progress (`lines_done`) counts these, for local files and downloads alike.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from aftercare.fhir.bundles import entries_of

FileKind = Literal["ndjson", "bundle"]
_NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_BUNDLE_SUFFIXES = (".json",)


class UnreadableFileError(ValueError):
    """A file that is neither NDJSON nor a FHIR Bundle or resource."""


def file_kind(path: Path) -> FileKind | None:
    """NDJSON or Bundle by the file name; None for other files."""
    name = path.name.lower()
    if name.endswith(_NDJSON_SUFFIXES):
        return "ndjson"
    if name.endswith(_BUNDLE_SUFFIXES):
        return "bundle"
    return None


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """The importable files named, with each directory's files in name order (not recursive)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(child for child in path.iterdir() if child.is_file() and file_kind(child)))
        elif file_kind(path) is None:
            raise UnreadableFileError(f"{path.name}: not an .ndjson, .ndjson.gz or .json file")
        else:
            found.append(path)
    return [path.resolve() for path in found]


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def ndjson_lines(path: Path) -> Iterator[str]:
    """The non-blank lines of an NDJSON file, one at a time (bounded memory whatever the file size)."""
    with _open_text(path) as lines:
        for line in lines:
            if line.strip():
                yield line


async def as_async(items: Iterable[Any]) -> AsyncIterator[Any]:
    """An iterable as an async iterator, for one import pipeline over files and downloads."""
    for item in items:
        yield item


async def skip(items: AsyncIterator[Any], count: int) -> AsyncIterator[Any]:
    """The items after the first `count` (the lines an earlier run already committed)."""
    skipped = 0
    async for item in items:
        if skipped < count:
            skipped += 1
            continue
        yield item


def bundle_resources(path: Path) -> list[dict[str, Any]]:
    """The resources of a Bundle file (or a single resource), references to entries resolved."""
    try:
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UnreadableFileError(f"{path.name}: not JSON") from error
    try:
        return [entry.resource for entry in entries_of(document)]
    except ValueError as error:
        raise UnreadableFileError(f"{path.name}: {error}") from error
