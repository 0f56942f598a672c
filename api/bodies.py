"""Reading request bodies that FastAPI cannot type by itself: JSON or YAML definitions, FHIR JSON or
NDJSON. Bad bodies get the same 422 shape FastAPI gives malformed JSON."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import HTTPException, Request

from aftercare.nesting import MAX_DEPTH, TooDeepError, load_json

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
NDJSON_TYPES = frozenset({"application/fhir+ndjson", "application/x-ndjson", "application/ndjson"})
JSON_TYPES = frozenset({"application/json", "application/fhir+json", "text/json", ""})


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases, which could inflate a small body into a huge document, and
    no deeper than `MAX_DEPTH` (composing nodes recurses)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not accepted", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise TooDeepError(MAX_DEPTH)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def media_type(request: Request) -> str:
    """The body's media type without parameters."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _invalid(kind: str, message: str, position: int | None = None) -> HTTPException:
    location: list[Any] = ["body"] + ([position] if position is not None else [])
    return HTTPException(422, [{"type": kind, "loc": location, "msg": message}])


async def read_definition(request: Request) -> Any:
    """A JSON or YAML document (by Content-Type)."""
    kind = media_type(request)
    raw = await request.body()
    if not raw.strip():
        raise _invalid("missing", "the request has no body")
    if kind in YAML_TYPES:
        return parse_yaml(raw)
    if kind in JSON_TYPES:
        return parse_json(raw)
    raise unsupported_media_type(kind, "JSON (application/json) or YAML (application/yaml)")


def parse_yaml(raw: bytes) -> Any:
    """Safe YAML without aliases, or a 422 `yaml_invalid` (or `too_deep`)."""
    try:
        return yaml.load(raw.decode("utf-8"), Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise _invalid("yaml_invalid", f"YAML decode error: {error}") from error
    except TooDeepError as error:
        raise too_deep(error) from error


def unsupported_media_type(kind: str, accepted: str) -> HTTPException:
    """415 naming the media types a route accepts."""
    sent = repr(kind) if kind else "a body without a Content-Type"
    return HTTPException(415, f"unsupported media type {sent}: send {accepted}")


def too_deep(error: TooDeepError) -> HTTPException:
    """422 for a body that nests deeper than the limit."""
    return _invalid("too_deep", str(error))


def parse_json(raw: bytes) -> Any:
    """JSON, or FastAPI's 422 `json_invalid` naming the position."""
    try:
        return load_json(raw)
    except json.JSONDecodeError as error:
        raise _invalid("json_invalid", f"JSON decode error: {error.msg}", error.pos) from error
    except UnicodeDecodeError as error:
        raise _invalid("json_invalid", "the body is not UTF-8") from error
    except TooDeepError as error:
        raise too_deep(error) from error


def definition_body(schema_ref: str) -> dict[str, Any]:
    """OpenAPI description of a body accepted as JSON or YAML."""
    schema = {"$ref": f"#/components/schemas/{schema_ref}"}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "application/yaml": {"schema": schema}},
        }
    }
