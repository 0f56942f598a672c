"""How deep a document may nest: bodies from outside (JSON, YAML, FHIR resources) are refused past
`MAX_DEPTH` levels before anything walks them recursively (validation, FHIRPath, storage), which would
otherwise end in a `RecursionError`."""

from __future__ import annotations

import json
from typing import Any

# Real definitions and FHIR resources nest a few dozen levels at most (a segment's criteria tree, a
# Bundle's entry.resource.extension.extension.valueCodeableConcept.coding).
MAX_DEPTH = 64


class TooDeepError(ValueError):
    """A document nests deeper than the limit."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"the document nests deeper than {limit} levels")
        self.limit = limit


def check_depth(document: Any, limit: int = MAX_DEPTH) -> None:
    """Raise `TooDeepError` when lists and objects nest deeper than `limit` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            raise TooDeepError(limit)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def load_json(raw: bytes | str, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing a document that nests deeper than `limit` (`TooDeepError`); decode errors
    are `json.JSONDecodeError` as usual."""
    try:
        document = json.loads(raw)
    except RecursionError as error:  # deeper than the decoder's own stack allows
        raise TooDeepError(limit) from error
    check_depth(document, limit)
    return document
