"""A local FHIR R4 server for tests: in memory, versioned, served over real HTTP by uvicorn.

Start one::

    from tests.fhir_server import running_fhir_server

    async with running_fhir_server(export_polls=2) as fhir:   # FhirTestServer(**options), served
        fhir.load_synthea([ABDUL_BUNDLE])                      # Synthea bundle file names
        async with FhirClient(fhir.base_url) as client:        # http://127.0.0.1:PORT/fhir
            ...

`running_fhir_server(server=None, *, tls=False, **options)` serves the given `FhirTestServer` (or a new
one made with `options`) inside the current event loop, sets `server.base_url`, and stops it on exit.
`tls=True` makes a throwaway CA and certificate (https; trust `server.tls.ca_file`). Without HTTP, use
`server.app` (a Starlette ASGI app) with `httpx.ASGITransport` (links then use the request's host).

`FhirTestServer(...)` options (all keyword, all also attributes you may change later):
`deliver` (see below), `rest_hook_style` ("put-type-id" | "post"), `everything_enabled` (False: `$everything`
answers `everything_missing_status`, 404 by default), `export_polls` (status polls answering 202 before
the manifest, default 1), `export_retry_after` ("1"), `export_max_lines` (split a type's NDJSON output
every N lines), `require_auth` (every FHIR endpoint but `metadata` wants a valid bearer token),
`token_lifetime` (seconds, 300), `default_count` (page size without `_count`, 10).

Data:
* `load_synthea(names=None)` Synthea transaction bundles from `../shared/data` (all when None; slow-ish:
  load only what a test needs), `load_bundle(path)`, `load_ndjson(directory)`, `load_resources(iterable)`:
  stored with their ids, `urn:uuid:` references rewritten to `Type/id`, no notifications.
* `put(resource, notify=True) -> dict` create or update (id assigned when missing): a new
  `meta.versionId` and a strictly increasing `meta.lastUpdated`; matching active subscriptions get an
  event and a queued notification. `await aput(resource)` = put + flush. `get(type, id)`, `delete(type, id)`.
* `reset()` empties a (running) server and restores the options it was made with: one session-scoped
  running server, reset per test, is much faster than a server per test. `store` (`store.of_type(type)`,
  `store.about_patient(id)`, `store.version(...)`) is there for assertions.

REST under `/fhir`: `GET metadata`; read/vread (410 after delete); `POST {type}` (new id), `PUT
{type}/{id}` (201/200, Location, ETag; notifications are sent before the answer), conditional update
`PUT {type}?search` (no match: create, with the body's id if it has one; one: update it; more: 412); search `GET {type}?` and
`POST {type}/_search`: `_id`, `_lastUpdated` and `date` with eq/ne/gt/ge/lt/le/sa/eb, `patient`, `subject`,
`encounter`, `code` (`system|code` or `code`), `status`, `identifier`, `category`, per type extras (Patient
`family`/`given`/`name`/`gender`/`birthdate`, MedicationRequest `medication`, Subscription `url`/`status`/
`criteria`/`type`, Group `member`), `_sort` (`date`, `_lastUpdated`, `_id`, `-` descends), `_count`,
`_include`/`_revinclude` (`Type:param[:Target]`, reference params), `_summary=count`; a `total`, entries
with `search.mode` match/include, `next` links `{base}?_getpages=TOKEN&_getpagesoffset=N` over a snapshot
(stable while others write). Unknown parameter -> 400, unknown type -> 404, both OperationOutcomes.
`GET Patient/{id}/$everything` (`_count`, `_type`, `_since`; paged).

Bulk Data: `GET $export`, `Patient/$export`, `Group/{id}/$export` (members' patients) with `Prefer:
respond-async` (else 400), `_type`, `_since`, `_outputFormat`: 202 + `Content-Location` status URL;
polls answer 202 with `Retry-After`/`X-Progress` `export_polls` times, then the manifest
(`transactionTime`, `request`, `requiresAccessToken` = `require_auth`, `output` [{type, url, count}],
`error` []); file URLs stream NDJSON; `DELETE` on the status URL cancels (202; then 404).

Subscriptions (`subscriptions.py`): a `requested` R4 classic Subscription (`criteria` `Type?params`) turns
`active` on write; a backport one (meta.profile `.../backport-subscription`, `_criteria` filter extensions,
`backport-payload-content`) gets a handshake first and turns `active` (or `error` if the endpoint refuses).
Notifications: classic with payload -> `PUT {endpoint}/{type}/{id}` (style "put-type-id") or `POST
{endpoint}` (style "post") with the resource; classic without payload -> empty `POST {endpoint}`; backport
-> `POST {endpoint}` a `history` Bundle, first entry a backport status `Parameters` (type
handshake/heartbeat/event-notification, events-since-subscription-start, notification-event with
event-number, timestamp, focus), then full-resource / id-only entries. `channel.header` values are sent.
* `deliver`: `async (method, url, headers, body: bytes) -> status`; default `http_deliver` (httpx to the
  real URL); `asgi_deliver(app)` routes to an in-process ASGI app. Every attempt is in `server.deliveries`
  (`Delivery`: subscription_id, kind, method, url, headers, body, event_numbers, status, error; `.json()`).
* Writes through `put` queue notifications: `await server.flush()` sends them (REST writes flush first).
* `drop_next_notifications(n)`: the next n events get numbers and are logged but not delivered (gaps).
* `await send_heartbeat(subscription_id) -> Delivery`; `events(subscription_id)` the event log.
* `GET|POST Subscription/{id}/$events?eventsSinceNumber=&eventsUntilNumber=`: a `history` Bundle shaped
  like a full-resource notification, type `query-event`; `GET Subscription/{id}/$status`: a searchset
  with the status `Parameters` (type `query-status`).

Auth: `GET /fhir/.well-known/smart-configuration`; `POST /auth/token` (`server.token_url`) with
`client_credentials`, HTTP Basic (`register_client(id, secret)`) or a JWT assertion (RS384/ES384 verified
against `register_key(id, public_key_pem_or_key, kid)`; iss = sub = client id, aud = token URL, exp at most
5 minutes ahead, jti used once). Opaque tokens with `expires_in`; `expire_tokens()` makes them all 401;
`token_requests` counts token requests; `fail_next_token(n, status=503, retry_after=None)` makes the token
endpoint fail.

Failures and logs: `fail_next(n, status=503, retry_after=None)` (Retry-After seconds or HTTP-date) for the
next n FHIR requests; `requests` is every FHIR request as (method, path relative to the base, query).
"""

from tests.fhir_server.running import running_fhir_server
from tests.fhir_server.server import FhirTestServer
from tests.fhir_server.subscriptions import Deliver, Delivery, Event, asgi_deliver, http_deliver
from tests.fhir_server.tls import TlsFiles, make_tls_files

__all__ = [
    "Deliver",
    "Delivery",
    "Event",
    "FhirTestServer",
    "TlsFiles",
    "asgi_deliver",
    "http_deliver",
    "make_tls_files",
    "running_fhir_server",
]
