"""Content hashes that decide whether a published definition changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(document: Any) -> str:
    """SHA-256 of the canonical JSON form."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
