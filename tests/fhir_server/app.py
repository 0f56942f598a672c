"""The test server's HTTP face (Starlette): FHIR REST under `/fhir`, OAuth under `/auth/token`."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aftercare.fhir.resources import is_resource_type
from tests.fhir_server.auth import TokenError
from tests.fhir_server.bulk import check_types
from tests.fhir_server.search import Query, SearchError, included, params_of, parse_datetime, parse_query, run
from tests.fhir_server.store import format_instant

if TYPE_CHECKING:
    from tests.fhir_server.server import FhirTestServer

FHIR_JSON = "application/fhir+json"
METHODS = ["GET", "POST", "PUT", "DELETE"]
_NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
_EXPORT_PARAMS = frozenset({"_outputFormat", "_type", "_since"})


class FhirError(Exception):
    """Answered as an OperationOutcome with this status."""

    def __init__(self, status: int, message: str, code: str = "processing") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def outcome(message: str, code: str = "processing", severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


def fhir_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON answer."""
    return Response(json.dumps(document), status, headers=headers, media_type=FHIR_JSON)


@dataclass(frozen=True)
class Snapshot:
    """A search's matches as found, paged through with an opaque token."""

    query: Query | None
    matches: list[dict[str, Any]]
    count: int
    first_url: str


def build_app(server: FhirTestServer) -> Starlette:
    """The ASGI app serving `server`."""

    def base_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/fhir"

    def token_url_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/auth/token"

    async def token(request: Request) -> Response:
        if server.token_failures:
            server.oauth.requests += 1
            status, retry_after = server.token_failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return JSONResponse({"error": "temporarily_unavailable"}, status, headers)
        form = dict(await form_pairs(request))
        try:
            body = server.oauth.issue_token(form, request.headers.get("Authorization"), token_url_of(request))
        except TokenError as error:
            return JSONResponse(error.body(), error.status)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def fhir(request: Request) -> Response:
        path = str(request.path_params.get("path", "")).strip("/")
        base = base_of(request)
        if path == ".well-known/smart-configuration":
            return JSONResponse(smart_configuration(token_url_of(request)))
        server.requests.append((request.method, path, request.url.query))
        try:
            if server.failures:
                status, retry_after = server.failures.pop(0)
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                return fhir_response(outcome(f"injected failure {status}", "transient"), status, headers)
            if server.require_auth and path != "metadata":
                authorization = request.headers.get("Authorization", "")
                token_value = authorization[7:] if authorization.lower().startswith("bearer ") else ""
                if not server.oauth.valid(token_value):
                    return fhir_response(
                        outcome("a valid bearer token is required", "login"),
                        401,
                        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    )
            return await route(request, path, base)
        except FhirError as error:
            return fhir_response(outcome(error.message, error.code), error.status)
        except SearchError as error:
            return fhir_response(outcome(str(error), "invalid"), 400)

    async def route(request: Request, path: str, base: str) -> Response:
        method = request.method
        parts = path.split("/") if path else []
        pairs = list(request.query_params.multi_items())
        if not parts:
            if method == "GET" and request.query_params.get("_getpages"):
                return page(request, base)
            raise FhirError(400, "transactions and batches are not supported", "not-supported")
        if parts == ["metadata"] and method == "GET":
            return fhir_response(capability_statement(server, base))
        if parts[-1] == "$export":
            return export_kick_off(request, parts, base, pairs)
        if parts[0] == "$export-status" and len(parts) == 2:
            return export_status(request, parts[1], base)
        if parts[0] == "$export-file" and len(parts) == 3 and method == "GET":
            return export_file(parts[1], parts[2])
        resource_type = parts[0]
        if not is_resource_type(resource_type):
            raise FhirError(404, f"unknown resource type {resource_type!r}", "not-supported")
        if len(parts) == 1:
            if method == "GET":
                return search(request, resource_type, pairs, base)
            if method == "POST":
                return await write(request, resource_type, None, base)
            if method == "PUT" and pairs:
                return await conditional_update(request, resource_type, pairs, base)
        if len(parts) == 2 and parts[1] == "_search" and method == "POST":
            form = await form_pairs(request)
            return search(request, resource_type, pairs + form, base)
        if len(parts) == 2:
            if method == "GET":
                return fhir_response(
                    current(resource_type, parts[1]),
                    headers=version_headers(current(resource_type, parts[1])),
                )
            if method == "PUT":
                return await write(request, resource_type, parts[1], base)
            if method == "DELETE":
                server.delete(resource_type, parts[1])
                return Response(status_code=204)
        if len(parts) == 4 and parts[2] == "_history" and method == "GET":
            found = server.store.version(resource_type, parts[1], parts[3])
            if found is None:
                raise FhirError(404, f"{resource_type}/{parts[1]} has no version {parts[3]}", "not-found")
            return fhir_response(found, headers=version_headers(found))
        if len(parts) == 3 and resource_type == "Patient" and parts[2] == "$everything" and method == "GET":
            return everything(request, parts[1], pairs, base)
        if len(parts) == 3 and resource_type == "Subscription" and parts[2] in ("$events", "$status"):
            return await subscription_operation(request, parts[1], parts[2], pairs)
        raise FhirError(400, f"{method} {path} is not supported", "not-supported")

    def current(resource_type: str, resource_id: str) -> dict[str, Any]:
        if server.store.is_deleted(resource_type, resource_id):
            raise FhirError(410, f"{resource_type}/{resource_id} was deleted", "deleted")
        found = server.store.get(resource_type, resource_id)
        if found is None:
            raise FhirError(404, f"{resource_type}/{resource_id} is not known", "not-found")
        return found

    async def conditional_update(
        request: Request, resource_type: str, pairs: list[tuple[str, str]], base: str
    ) -> Response:
        """`PUT {type}?search` as HAPI does it: no match creates (with the body's id, else a new one),
        one match updates it, more than one is a 412."""
        matches = run(server.store, parse_query(resource_type, pairs))
        if len(matches) > 1:
            raise FhirError(412, f"{len(matches)} resources match the condition", "multiple-matches")
        resource = await body_of(request, resource_type)
        if matches:
            found = str(matches[0]["id"])
            if resource.setdefault("id", found) != found:
                raise FhirError(400, f"the body's id must be {found!r}, the matching resource", "invalid")
        return await save(request, resource_type, resource.get("id"), resource, base)

    async def body_of(request: Request, resource_type: str) -> dict[str, Any]:
        try:
            resource = json.loads(await request.body())
        except ValueError as error:
            raise FhirError(400, "the body is not JSON", "structure") from error
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise FhirError(400, f"the body is not a {resource_type}", "invalid")
        return resource

    async def write(request: Request, resource_type: str, resource_id: str | None, base: str) -> Response:
        return await save(request, resource_type, resource_id, await body_of(request, resource_type), base)

    async def save(
        request: Request, resource_type: str, resource_id: str | None, resource: dict[str, Any], base: str
    ) -> Response:
        if resource_id is None:
            resource["id"] = str(uuid.uuid4())
        elif resource.get("id") != resource_id:
            raise FhirError(400, f"the body's id must be {resource_id!r}", "invalid")
        created = resource_id is None or server.store.get(resource_type, resource_id) is None
        stored = server.put(resource)
        await server.flush()
        stored = server.store.get(resource_type, stored["id"]) or stored
        headers = version_headers(stored)
        headers["Location"] = f"{base}/{resource_type}/{stored['id']}/_history/{stored['meta']['versionId']}"
        status = 201 if created else 200
        if "return=minimal" in request.headers.get("Prefer", ""):
            return Response(status_code=status, headers=headers)
        return fhir_response(stored, status, headers)

    def search(request: Request, resource_type: str, pairs: list[tuple[str, str]], base: str) -> Response:
        query = parse_query(resource_type, pairs)
        matches = run(server.store, query)
        self_url = f"{base}/{resource_type}" + (f"?{urlencode(pairs)}" if pairs else "")
        if query.summary_count:
            return fhir_response(
                {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "total": len(matches),
                    "link": [{"relation": "self", "url": self_url}],
                }
            )
        count = query.count if query.count is not None else server.default_count
        return start_paging(Snapshot(query, matches, count, self_url), base)

    def everything(request: Request, patient_id: str, pairs: list[tuple[str, str]], base: str) -> Response:
        if not server.everything_enabled:
            raise FhirError(server.everything_missing_status, "$everything is not supported", "not-supported")
        patient = current("Patient", patient_id)
        params = dict(pairs)
        unknown = set(params) - {"_count", "_since", "_type", "start", "end"}
        if unknown:
            raise FhirError(400, f"$everything does not take {', '.join(sorted(unknown))}", "not-supported")
        types = check_types(params.get("_type"))
        since = parse_datetime(params["_since"])[0] if params.get("_since") else None
        found = [patient] + [r for r in server.store.about_patient(patient_id) if r is not patient]
        found = [
            r
            for r in found
            if (types is None or r["resourceType"] in types)
            and (since is None or parse_datetime(r["meta"]["lastUpdated"])[0] > since)
        ]
        count = int(params["_count"]) if params.get("_count", "").isdigit() else server.default_count
        self_url = f"{base}/Patient/{patient_id}/$everything" + (f"?{urlencode(pairs)}" if pairs else "")
        return start_paging(Snapshot(None, found, count, self_url), base)

    def start_paging(snapshot: Snapshot, base: str) -> Response:
        token_value = uuid.uuid4().hex
        server.searches[token_value] = snapshot
        return fhir_response(page_bundle(token_value, snapshot, 0, base, snapshot.first_url))

    def page(request: Request, base: str) -> Response:
        token_value = request.query_params["_getpages"]
        snapshot = server.searches.get(token_value)
        if snapshot is None:
            raise FhirError(410, "the search has expired", "not-found")
        offset = int(request.query_params.get("_getpagesoffset", "0"))
        return fhir_response(page_bundle(token_value, snapshot, offset, base, str(request.url)))

    def page_bundle(
        token_value: str, snapshot: Snapshot, offset: int, base: str, self_url: str
    ) -> dict[str, Any]:
        count = max(snapshot.count, 1)
        members = snapshot.matches[offset : offset + count] if snapshot.count > 0 else []
        entries = [entry(resource, "match", base) for resource in members]
        if snapshot.query is not None:
            entries += [entry(r, "include", base) for r in included(server.store, snapshot.query, members)]
        links = [{"relation": "self", "url": self_url}]
        if snapshot.count > 0 and offset + count < len(snapshot.matches):
            next_query = urlencode(
                {"_getpages": token_value, "_getpagesoffset": offset + count, "_count": count}
            )
            links.append({"relation": "next", "url": f"{base}?{next_query}"})
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": format_instant(server.store.next_instant())},
            "type": "searchset",
            "total": len(snapshot.matches),
            "link": links,
        }
        if entries:
            bundle["entry"] = entries
        return bundle

    def export_kick_off(
        request: Request, parts: list[str], base: str, pairs: list[tuple[str, str]]
    ) -> Response:
        if request.method != "GET":
            raise FhirError(405, "$export is a GET", "not-supported")
        group_id: str | None = None
        if len(parts) == 3 and parts[0] == "Group":
            group_id = parts[1]
        elif parts not in (["$export"], ["Patient", "$export"]):
            raise FhirError(404, f"no export at {'/'.join(parts)}", "not-supported")
        if "respond-async" not in request.headers.get("Prefer", ""):
            raise FhirError(400, "$export needs the header Prefer: respond-async", "required")
        params = dict(pairs)
        unknown = set(params) - _EXPORT_PARAMS
        if unknown:
            raise FhirError(400, f"$export does not support {', '.join(sorted(unknown))}", "not-supported")
        output_format = params.get("_outputFormat")
        if output_format and output_format not in _NDJSON_FORMATS:
            raise FhirError(400, f"_outputFormat {output_format} is not supported", "not-supported")
        try:
            job = server.bulk.kick_off(
                request_url=str(request.url),
                group_id=group_id,
                patient_level=parts[0] == "Patient",
                types=check_types(params.get("_type")),
                since=params.get("_since"),
                polls=server.export_polls,
                max_lines=server.export_max_lines,
            )
        except KeyError as error:
            raise FhirError(404, f"{error.args[0]} is not known", "not-found") from error
        return Response(status_code=202, headers={"Content-Location": f"{base}/$export-status/{job.id}"})

    def export_status(request: Request, job_id: str, base: str) -> Response:
        job = server.bulk.jobs.get(job_id)
        if job is None:
            raise FhirError(404, f"no export {job_id}", "not-found")
        if request.method == "DELETE":
            del server.bulk.jobs[job_id]
            return Response(status_code=202)
        if job.polls_left > 0:
            job.polls_left -= 1
            return Response(
                status_code=202,
                headers={
                    "Retry-After": server.export_retry_after,
                    "X-Progress": f"in progress ({job.polls_left} more poll(s))",
                },
            )
        manifest = server.bulk.manifest(job, base, server.require_auth)
        return JSONResponse(manifest, headers={"Expires": "Fri, 01 Jan 2100 00:00:00 GMT"})

    def export_file(job_id: str, name: str) -> Response:
        job = server.bulk.jobs.get(job_id)
        if job is None or name not in job.files:
            raise FhirError(404, f"no export file {job_id}/{name}", "not-found")
        lines = list(job.files[name])

        async def body() -> AsyncIterator[bytes]:
            for line in lines:
                yield line.encode() + b"\n"

        return StreamingResponse(body(), media_type="application/fhir+ndjson")

    async def subscription_operation(
        request: Request, subscription_id: str, operation: str, pairs: list[tuple[str, str]]
    ) -> Response:
        current("Subscription", subscription_id)
        if operation == "$status":
            return fhir_response(server.hub.status_bundle(subscription_id))
        params = dict(pairs)
        if request.method == "POST" and request.headers.get("Content-Type", "").startswith(FHIR_JSON):
            body = json.loads(await request.body() or b"{}")
            for parameter in body.get("parameter") or []:
                value = next((v for k, v in parameter.items() if k.startswith("value")), None)
                params[str(parameter.get("name"))] = str(value)
        try:
            since = int(params["eventsSinceNumber"]) if "eventsSinceNumber" in params else None
            until = int(params["eventsUntilNumber"]) if "eventsUntilNumber" in params else None
        except ValueError as error:
            raise FhirError(400, "eventsSinceNumber and eventsUntilNumber are numbers", "invalid") from error
        return fhir_response(server.hub.events_bundle(subscription_id, since, until))

    return Starlette(
        routes=[
            Route("/auth/token", token, methods=["POST"]),
            Route("/fhir", fhir, methods=METHODS),
            Route("/fhir/{path:path}", fhir, methods=METHODS),
        ]
    )


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """The fields of a form-encoded body (python-multipart is not needed for these)."""
    return parse_qsl((await request.body()).decode(), keep_blank_values=True)


def entry(resource: dict[str, Any], mode: str, base: str) -> dict[str, Any]:
    """A searchset entry."""
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def version_headers(resource: dict[str, Any]) -> dict[str, str]:
    """ETag and Last-Modified of a stored resource."""
    return {"ETag": f'W/"{resource["meta"]["versionId"]}"', "Last-Modified": resource["meta"]["lastUpdated"]}


def smart_configuration(token_url: str) -> dict[str, Any]:
    """`.well-known/smart-configuration` for SMART Backend Services."""
    return {
        "token_endpoint": token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": ["system/*.rs", "system/*.read"],
        "capabilities": ["client-confidential-asymmetric", "client-confidential-symmetric"],
    }


def capability_statement(server: FhirTestServer, base: str) -> dict[str, Any]:
    """The CapabilityStatement: the types held (and Patient, Group, Subscription), their search
    parameters, and the operations offered."""
    types = sorted({*server.store.types(), "Patient", "Group", "Subscription"})
    resources = []
    for resource_type in types:
        params = [{"name": "_id", "type": "token"}, {"name": "_lastUpdated", "type": "date"}]
        params += [{"name": name, "type": p.kind} for name, p in params_of(resource_type).items()]
        described: dict[str, Any] = {
            "type": resource_type,
            "interaction": [{"code": code} for code in ("read", "vread", "create", "update", "search-type")],
            "searchInclude": [
                f"{resource_type}:{name}"
                for name, p in params_of(resource_type).items()
                if p.kind == "reference"
            ],
            "searchParam": params,
        }
        operations = []
        if resource_type == "Patient":
            if server.everything_enabled:
                operations.append(
                    {
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    }
                )
            operations.append(
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                }
            )
        if resource_type == "Group":
            operations.append(
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
                }
            )
        if resource_type == "Subscription":
            operations.append(
                {
                    "name": "events",
                    "definition": "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events",
                }
            )
            operations.append(
                {
                    "name": "status",
                    "definition": "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
                }
            )
        if operations:
            described["operation"] = operations
        resources.append(described)
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "operation": [
            {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}
        ],
    }
    if server.require_auth:
        rest["security"] = {
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": base.rsplit("/", 1)[0] + "/auth/token"}],
                }
            ],
        }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(server.store.next_instant()),
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "Aftercare FHIR test server", "url": base},
        "rest": [rest],
    }
