"""Bodies in a media type a route does not read are a 415 naming the ones it does; JSON bodies of typed
routes nest no deeper than `MAX_DEPTH`.

Routes that read their body themselves (definitions as JSON or YAML, FHIR JSON or NDJSON) check the
media type where they read it (`api.bodies.read_definition`, `api.fhir_bodies`); this dependency serves
every route whose body FastAPI parses into a model.
"""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.routing import APIRoute

from aftercare.nesting import TooDeepError, check_depth
from api.bodies import media_type, too_deep, unsupported_media_type


def is_json_type(kind: str) -> bool:
    """`application/json` or a `+json` type (FastAPI's own rule); an absent type is read as JSON too."""
    return kind in ("", "application/json") or (kind.startswith("application/") and kind.endswith("+json"))


async def typed_body(request: Request) -> None:
    """415 for a model route's body that is not JSON; 422 for one that nests too deep."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return
    if not await request.body():
        return
    kind = media_type(request)
    if not is_json_type(kind):
        raise unsupported_media_type(kind, "JSON (application/json)")
    try:
        document = await request.json()  # parsed once: FastAPI keeps it for the route
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return  # FastAPI has answered these already
    try:
        check_depth(document)
    except TooDeepError as error:
        raise too_deep(error) from error
