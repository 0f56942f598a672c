"""The documentation pages, `/docs` (Swagger UI) and `/redoc`, served with their scripts and styles from
the API itself (`api/static`, pinned copies: see `api/static/vendor/README.md`), so they render on a
machine without internet access and under a policy that loads nothing from anywhere else."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from api.route_rules import STATIC_PREFIX

STATIC_DIRECTORY = Path(__file__).parent / "static"

_SWAGGER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API documentation</title>
<link rel="stylesheet" href="{static}/vendor/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="{static}/docs/swagger-a11y.css">
<link rel="icon" type="image/png" href="{static}/vendor/swagger-ui/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{static}/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{static}/docs/swagger-init.js"></script>
</body>
</html>
"""

_REDOC = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API reference</title>
<link rel="icon" type="image/png" href="{static}/vendor/swagger-ui/favicon-32x32.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{static}/vendor/redoc/redoc.standalone.js"></script>
</body>
</html>
"""


def _page(template: str, app: FastAPI, request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    assert app.openapi_url is not None
    return HTMLResponse(
        template.format(
            title=escape(app.title),
            static=escape(root + STATIC_PREFIX),
            openapi=escape(root + app.openapi_url),
        )
    )


def install_docs(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc` and the static files they load (create the app with `docs_url=None` and
    `redoc_url=None`, so FastAPI's pages, which load their assets from a CDN, are not added)."""

    async def swagger_ui(request: Request) -> HTMLResponse:
        return _page(_SWAGGER, app, request)

    async def redoc(request: Request) -> HTMLResponse:
        return _page(_REDOC, app, request)

    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIRECTORY), name="static")
    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
