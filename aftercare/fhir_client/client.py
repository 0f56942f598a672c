"""An async FHIR R4 REST client: read, search with paging, $everything, writes, Bulk Data export and NDJSON
streaming over one keep-alive HTTP connection pool, with retries and authentication in one place."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl

import httpx

from aftercare.fhir_client.auth import Auth, NoAuth
from aftercare.fhir_client.errors import (
    FhirAuthError,
    FhirClientError,
    FhirNotFound,
    FhirNotSupported,
    FhirUnavailable,
    outcome_issues,
)
from aftercare.fhir_client.retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    may_retry,
    may_retry_after_error,
    retry_after_seconds,
)
from aftercare.fhir_client.tls import ClientCert, ssl_context

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
# Search parameters: a mapping (a list value repeats the parameter) or (name, value) pairs.
SearchParams = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
Sleep = Callable[[float], Awaitable[Any]]
_OPERATION_MISSING = frozenset({404, 405, 501})


class SearchEntry(NamedTuple):
    """A resource from a searchset and why it is there: `match`, `include` or `outcome`."""

    resource: dict[str, Any]
    mode: str


@dataclass(frozen=True)
class ExportStatus:
    """A Bulk Data export's state: the manifest once complete, else the progress and the wait asked for."""

    complete: bool
    manifest: dict[str, Any] | None = None
    progress: str | None = None
    retry_after: float | None = None


class FhirClient:
    """A FHIR server at `base_url`. Use as `async with FhirClient(...) as fhir:`.

    `verify` is True (system CAs), False, or the path of a CA bundle; `cert` a client certificate for
    mutual TLS. Busy and failing answers (429, 500, 502, 503, 504) and network errors are retried up to
    `max_attempts` times with backoff (`sleep` waits; tests pass their own)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
        cert: ClientCert | None = None,
        max_attempts: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth: Auth = auth or NoAuth()
        self.retry = retry or RetryPolicy(max_attempts=max_attempts)
        self.tls: ssl.SSLContext = ssl_context(verify, cert)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"Accept": FHIR_JSON},
            timeout=timeout,
            verify=self.tls,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: SearchParams | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> httpx.Response:
        """Send a request (a path relative to the base URL, or an absolute URL) and return a 1xx-3xx
        answer, retrying busy and failing answers; any other answer raises the matching FhirClientError."""
        return await self._send(
            method,
            url,
            params=params,
            headers=headers,
            json=json,
            content=content,
            stream=False,
            with_auth=True,
        )

    async def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement (`GET metadata`)."""
        return _json_object(await self.request("GET", "metadata"))

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """The current version of a resource; FhirNotFound when it does not exist or was deleted."""
        return _json_object(await self.request("GET", f"{resource_type}/{resource_id}"))

    async def vread(self, resource_type: str, resource_id: str, version: str | int) -> dict[str, Any]:
        """One version of a resource."""
        return _json_object(await self.request("GET", f"{resource_type}/{resource_id}/_history/{version}"))

    async def search_pages(
        self, path: str, params: SearchParams | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Each searchset Bundle of a search (`path` is a type, or e.g. `Patient/1/$everything`),
        following `next` links until there are none."""
        url, query, seen = path, params, set()
        while True:
            bundle = _json_object(await self.request("GET", url, params=query))
            if bundle.get("resourceType") != "Bundle":
                raise FhirClientError(f"GET {path} answered a {bundle.get('resourceType')}, not a Bundle")
            yield bundle
            next_url = next_link(bundle)
            if next_url is None:
                return
            if next_url in seen:
                raise FhirClientError(f"the server's next link for {path} repeats itself")
            seen.add(next_url)
            url, query = next_url, None

    async def search_entries(
        self, path: str, params: SearchParams | None = None
    ) -> AsyncGenerator[SearchEntry, None]:
        """Every entry of every page with its search mode (`match`, `include`, `outcome`); an entry
        without a mode is a match when it has the searched type."""
        resource_type = path.split("/", 1)[0].split("?", 1)[0]
        async with aclosing(self.search_pages(path, params)) as pages:
            async for bundle in pages:
                for entry in bundle.get("entry") or []:
                    resource = entry.get("resource") if isinstance(entry, dict) else None
                    if isinstance(resource, dict):
                        yield SearchEntry(resource, _search_mode(entry, resource, resource_type))

    async def search(
        self, path: str, params: SearchParams | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every resource a search returns, on every page: matches and `_include`/`_revinclude`d
        resources (use `search_entries` to tell them apart); OperationOutcome warnings are left out."""
        async with aclosing(self.search_entries(path, params)) as entries:
            async for entry in entries:
                if entry.mode != "outcome":
                    yield entry.resource

    async def search_query(
        self, query: str, *, limit: int | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The resources of a relative search such as `Observation?patient=1&_sort=-date&_count=1`,
        stopping after `limit` resources. A `+` in the query is a plus (as in a timezone), not a space."""
        path, _, query_string = query.lstrip("/").partition("?")
        params = parse_qsl(query_string.replace("+", "%2B"), keep_blank_values=True)
        if limit is not None and limit <= 0:
            return
        count = 0
        async with aclosing(self.search(path, params)) as resources:
            async for resource in resources:
                yield resource
                count += 1
                if limit is not None and count >= limit:
                    return

    async def everything(
        self, patient_id: str, params: SearchParams | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every resource of a patient's record (`Patient/{id}/$everything`, paged). FhirNotSupported
        when the server lacks the operation, FhirNotFound when it lacks the patient."""
        path = f"Patient/{patient_id}/$everything"
        try:
            async with aclosing(self.search(path, params)) as resources:
                async for resource in resources:
                    yield resource
        except FhirNotFound as error:
            await self.read("Patient", patient_id)
            raise FhirNotSupported(
                f"the server has no $everything ({error.status})", status=error.status
            ) from error
        except FhirClientError as error:
            if error.status in _OPERATION_MISSING:
                raise FhirNotSupported(
                    f"the server has no $everything ({error.status})", status=error.status
                ) from error
            raise

    async def create(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new resource; returns it as stored (with its server id and meta)."""
        response = await self.request(
            "POST",
            _resource_type(resource),
            content=json.dumps(resource),
            headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"},
        )
        return await self._written(response)

    async def update(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a resource under its id (creating it when the server allows); returns it as stored."""
        resource_id = resource.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            raise ValueError("a resource to update needs an id")
        response = await self.request(
            "PUT",
            f"{_resource_type(resource)}/{resource_id}",
            content=json.dumps(resource),
            headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"},
        )
        return await self._written(response)

    async def update_where(self, resource: Mapping[str, Any], search: SearchParams) -> dict[str, Any]:
        """Conditional update, `PUT {type}?search`: creates the resource when nothing matches, updates
        the one match, and fails (412) on several; the write that is idempotent on an identifier."""
        response = await self.request(
            "PUT",
            _resource_type(resource),
            params=search,
            content=json.dumps(resource),
            headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"},
        )
        return await self._written(response)

    async def stream_lines(self, url: str, *, with_auth: bool = False) -> AsyncGenerator[str, None]:
        """The non-blank lines of an NDJSON file (a Bulk Data output file), read as they arrive. The
        Authorization header is only sent `with_auth` (the manifest's `requiresAccessToken`)."""
        response = await self._send(
            "GET", url, headers={"Accept": FHIR_NDJSON}, stream=True, with_auth=with_auth
        )
        try:
            async for line in response.aiter_lines():
                if line.strip():
                    yield line
        finally:
            await response.aclose()

    async def start_export(
        self,
        path: str = "$export",
        *,
        types: Sequence[str] | None = None,
        since: datetime | str | None = None,
        params: SearchParams | None = None,
    ) -> str:
        """Kick off a Bulk Data export (`$export`, `Patient/$export`, `Group/{id}/$export`); returns the
        status URL to poll. FhirNotSupported when the server has no such export, FhirNotFound when it
        lacks the group."""
        query: list[tuple[str, str]] = [("_outputFormat", FHIR_NDJSON)]
        if types:
            query.append(("_type", ",".join(types)))
        if since is not None:
            query.append(("_since", since.isoformat() if isinstance(since, datetime) else since))
        query.extend(_pairs(params))
        try:
            response = await self.request(
                "GET", path, params=query, headers={"Accept": FHIR_JSON, "Prefer": "respond-async"}
            )
        except FhirClientError as error:
            if error.status in _OPERATION_MISSING:
                parts = path.strip("/").split("/")
                if error.status == 404 and len(parts) == 3:  # Group/{id}/$export: is the group there?
                    await self.read(parts[0], parts[1])
                raise FhirNotSupported(
                    f"the server has no {path} ({error.status})", status=error.status
                ) from error
            raise
        status_url = response.headers.get("Content-Location")
        if response.status_code != 202 or not status_url:
            raise FhirClientError(
                f"{path} answered {response.status_code} without a status URL", status=response.status_code
            )
        return str(status_url)

    async def export_status(self, status_url: str) -> ExportStatus:
        """Poll an export once: complete with the manifest (200), or in progress (202)."""
        response = await self.request("GET", status_url, headers={"Accept": "application/json"})
        if response.status_code == 202:
            return ExportStatus(
                complete=False,
                progress=response.headers.get("X-Progress"),
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        return ExportStatus(complete=True, manifest=_json_object(response))

    async def wait_for_export(self, status_url: str, *, poll_seconds: float = 5.0) -> dict[str, Any]:
        """Poll until the export completes (waiting as long as the server asks); returns the manifest."""
        while True:
            status = await self.export_status(status_url)
            if status.manifest is not None:
                return status.manifest
            wait = poll_seconds if status.retry_after is None else self.retry.delay(1, status.retry_after)
            await self._sleep(wait)

    async def cancel_export(self, status_url: str) -> None:
        """Cancel an export in progress (or delete a finished one's files)."""
        await self.request("DELETE", status_url)

    async def _written(self, response: httpx.Response) -> dict[str, Any]:
        if response.content:
            document = _json_object(response)
            if "resourceType" in document and document["resourceType"] != "OperationOutcome":
                return document
        location = response.headers.get("Location") or response.headers.get("Content-Location")
        if not location:
            raise FhirClientError("the server stored the resource but answered neither it nor its location")
        return _json_object(await self.request("GET", location))

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: SearchParams | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        stream: bool,
        with_auth: bool,
    ) -> httpx.Response:
        attempt, refreshed = 0, False
        query: list[tuple[str, str | int | float | bool | None]] | None = (
            list(_pairs(params)) if params is not None else None
        )
        while True:
            attempt += 1
            try:
                auth_headers = await self.auth.headers(self._http) if with_auth else {}
                request = self._http.build_request(
                    method,
                    url,
                    params=query,
                    headers={**(headers or {}), **auth_headers},
                    json=json,
                    content=content,
                )
                response = await self._http.send(request, stream=stream)
            except FhirUnavailable as error:  # the token endpoint was busy or unreachable
                if attempt >= self.retry.max_attempts:
                    raise
                await self._wait(method, url, attempt, error.status, error.retry_after)
                continue
            except httpx.TransportError as error:
                if _tls_failed(error):
                    raise FhirClientError(f"TLS with {self.base_url} failed: {_tls_reason(error)}") from error
                if attempt >= self.retry.max_attempts or not may_retry_after_error(method, error):
                    raise FhirUnavailable(
                        f"{method} {_path(url)} failed after {attempt} attempt(s): {type(error).__name__}"
                    ) from error
                await self._wait(method, url, attempt, None, None)
                continue
            status = response.status_code
            if status < 400:
                return response
            if stream:
                await response.aread()
                await response.aclose()
            if status == 401 and with_auth and not refreshed:
                refreshed = True
                attempt -= 1
                self.auth.invalidate()
                continue
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.retry.max_attempts and may_retry(method, status):
                await self._wait(method, url, attempt, status, retry_after)
                continue
            raise _error_for(response, f"{method} {_path(url)}", attempt, retry_after)

    async def _wait(
        self, method: str, url: str, attempt: int, status: int | None, retry_after: float | None
    ) -> None:
        delay = self.retry.delay(attempt, retry_after)
        log.warning(
            "FHIR request will be retried",
            extra={
                "method": method,
                "path": _path(url),
                "status": status,
                "attempt": attempt,
                "delay": delay,
            },
        )
        await self._sleep(delay)


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of a Bundle's `next` page, if any."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            url: str = link["url"]
            return url
    return None


def _error_for(
    response: httpx.Response, what: str, attempts: int, retry_after: float | None
) -> FhirClientError:
    status = response.status_code
    issues = outcome_issues(response.content)
    if status in (404, 410):
        return FhirNotFound(f"{what}: {status}", status=status, issues=issues)
    if status in (401, 403):
        return FhirAuthError(f"{what}: {status}", status=status, issues=issues)
    if status in RETRYABLE_STATUSES:
        return FhirUnavailable(
            f"{what}: {status} after {attempts} attempt(s)",
            status=status,
            issues=issues,
            retry_after=retry_after,
        )
    return FhirClientError(f"{what}: {status}", status=status, issues=issues)


def _pairs(params: SearchParams | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str]] = []
        for name, value in params.items():
            if isinstance(value, str | int):
                pairs.append((name, str(value)))
            else:
                pairs.extend((name, str(item)) for item in value)
        return pairs
    return [(str(name), str(value)) for name, value in params]


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        document: Any = response.json()
    except ValueError as error:
        raise FhirClientError(f"{_path(str(response.url))} answered something that is not JSON") from error
    if not isinstance(document, dict):
        raise FhirClientError(f"{_path(str(response.url))} answered JSON that is not an object")
    return document


def _resource_type(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise ValueError("the resource has no resourceType")
    return resource_type


def _search_mode(entry: Mapping[str, Any], resource: Mapping[str, Any], searched_type: str) -> str:
    mode = (entry.get("search") or {}).get("mode")
    if isinstance(mode, str) and mode:
        return mode
    if resource.get("resourceType") == "OperationOutcome":
        return "outcome"
    return "match" if resource.get("resourceType") == searched_type or searched_type == "" else "include"


def _path(url: str) -> str:
    """A URL without its query (which may hold search values about a patient)."""
    return url.split("?", 1)[0]


def _tls_failed(error: BaseException) -> bool:
    return _tls_error(error) is not None


def _tls_reason(error: BaseException) -> str:
    tls_error = _tls_error(error)
    return getattr(tls_error, "reason", None) or type(tls_error).__name__


def _tls_error(error: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
