"""`FhirTestServer`: the test server's state (resources, subscriptions, exports, OAuth clients, failure
injection, request log) and the operations tests call directly. `app.py` serves it over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.fhir_server.auth import TokenServer
from tests.fhir_server.bulk import BulkExports
from tests.fhir_server.store import Store, bundle_resources, ndjson_resources
from tests.fhir_server.subscriptions import (
    Deliver,
    Delivery,
    Event,
    RestHookStyle,
    SubscriptionHub,
    http_deliver,
)
from tests.fhir_server.tls import TlsFiles

REPO = Path(__file__).resolve().parents[2]
SYNTHEA_BUNDLES = REPO.parent / "shared" / "data" / "synthea" / "fhir-r4-bundles"


class FhirTestServer:
    """An in-memory FHIR R4 server for tests. See the package docstring for the whole API."""

    def __init__(
        self,
        *,
        base_url: str = "http://fhir.test/fhir",
        deliver: Deliver | None = None,
        rest_hook_style: RestHookStyle = "put-type-id",
        everything_enabled: bool = True,
        everything_missing_status: int = 404,
        export_polls: int = 1,
        export_retry_after: str = "1",
        export_max_lines: int | None = None,
        require_auth: bool = False,
        token_lifetime: int = 300,
        default_count: int = 10,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tls: TlsFiles | None = None
        self._options: dict[str, Any] = {
            "deliver": deliver,
            "rest_hook_style": rest_hook_style,
            "everything_enabled": everything_enabled,
            "everything_missing_status": everything_missing_status,
            "export_polls": export_polls,
            "export_retry_after": export_retry_after,
            "export_max_lines": export_max_lines,
            "require_auth": require_auth,
            "token_lifetime": token_lifetime,
            "default_count": default_count,
        }
        self.reset()
        from tests.fhir_server.app import build_app

        self.app = build_app(self)

    def reset(self) -> None:
        """Forget everything (resources, subscriptions, exports, clients, tokens, logs, failures) and go
        back to the options the server was made with; `base_url`, `tls` and `app` stay."""
        options = self._options
        self.deliver: Deliver = options["deliver"] or http_deliver
        self.rest_hook_style: RestHookStyle = options["rest_hook_style"]
        self.everything_enabled: bool = options["everything_enabled"]
        self.everything_missing_status: int = options["everything_missing_status"]
        self.export_polls: int = options["export_polls"]
        self.export_retry_after: str = options["export_retry_after"]
        self.export_max_lines: int | None = options["export_max_lines"]
        self.require_auth: bool = options["require_auth"]
        self.default_count: int = options["default_count"]
        self.store = Store()
        self.hub = SubscriptionHub(
            self.store, lambda: self.base_url, lambda: self.deliver, lambda: self.rest_hook_style
        )
        self.bulk = BulkExports(self.store)
        self.oauth = TokenServer(options["token_lifetime"])
        self.requests: list[tuple[str, str, str]] = []
        self.failures: list[tuple[int, str | None]] = []
        self.token_failures: list[tuple[int, str | None]] = []
        self.searches: dict[str, Any] = {}

    # -- data ---------------------------------------------------------------------------------------

    def load_resources(self, resources: Iterable[dict[str, Any]], *, notify: bool = False) -> int:
        """Store resources as they are (ids kept); no notifications unless `notify`. Returns the count."""
        count = 0
        for resource in resources:
            self.put(resource, notify=notify)
            count += 1
        return count

    def load_bundle(self, path: str | Path) -> list[dict[str, Any]]:
        """Store the resources of a (transaction) Bundle file, `urn:uuid:` references rewritten to
        `Type/id`; returns them as stored."""
        return [self.put(resource, notify=False) for resource in bundle_resources(Path(path))]

    def load_synthea(self, names: Iterable[str] | None = None, directory: str | Path | None = None) -> int:
        """Load Synthea bundles by file name (all `*.json` in the shared data when `names` is None,
        hospital and practitioner bundles first). Returns how many resources were stored."""
        folder = Path(directory) if directory else SYNTHEA_BUNDLES
        paths = (
            [folder / name for name in names]
            if names is not None
            else sorted(folder.glob("*.json"), key=lambda p: (not p.name[0].islower(), p.name))
        )
        return sum(len(self.load_bundle(path)) for path in paths)

    def load_ndjson(self, directory: str | Path) -> int:
        """Store every resource of a Bulk Data export directory's NDJSON files; returns the count."""
        return self.load_resources(ndjson_resources(Path(directory)))

    def put(self, resource: dict[str, Any], *, notify: bool = True) -> dict[str, Any]:
        """Create or update a resource (an id is assigned when missing): a new `meta.versionId` and a
        strictly increasing `meta.lastUpdated`. Matching subscriptions get an event and a notification is
        queued (sent by `flush()`); a requested Subscription is activated (backport: after a handshake,
        queued too). Returns the resource as stored."""
        resource = dict(resource)
        if not resource.get("id"):
            resource["id"] = str(uuid.uuid4())
        created = self.store.get(str(resource["resourceType"]), str(resource["id"])) is None
        stored = self.store.put(resource)
        if stored["resourceType"] == "Subscription":
            return self.hub.subscription_written(stored)
        if notify:
            self.hub.resource_written(stored, created)
        return stored

    async def aput(self, resource: dict[str, Any]) -> dict[str, Any]:
        """`put`, then `flush()`; returns the resource's current version."""
        stored = self.put(resource)
        await self.flush()
        return self.get(stored["resourceType"], stored["id"]) or stored

    def get(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The current version of a resource, or None."""
        return self.store.get(resource_type, resource_id)

    def delete(self, resource_type: str, resource_id: str) -> bool:
        """Delete a resource (reads then answer 410); False when there was none."""
        return self.store.delete(resource_type, resource_id)

    # -- subscriptions ------------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """Every notification sent (or tried), in order."""
        return self.hub.deliveries

    async def flush(self) -> None:
        """Send every queued notification and handshake, in order."""
        await self.hub.flush()

    def drop_next_notifications(self, count: int) -> None:
        """The next `count` events are numbered and logged (`$events` has them) but not delivered."""
        self.hub.drop_next(count)

    async def send_heartbeat(self, subscription_id: str) -> Delivery:
        """Deliver a backport heartbeat notification for the subscription now."""
        return await self.hub.heartbeat(subscription_id)

    def events(self, subscription_id: str) -> list[Event]:
        """The events logged for a subscription, delivered or not."""
        return list(self.hub.state(subscription_id).events)

    # -- failures and auth --------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        """The next `count` FHIR requests (not the token endpoint nor the SMART configuration) answer
        `status` with an OperationOutcome, and `Retry-After: retry_after` when given (seconds or an
        HTTP-date)."""
        self.failures.extend([(status, retry_after)] * count)

    def fail_next_token(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        """The next `count` token requests answer `status` (and `Retry-After` when given)."""
        self.token_failures.extend([(status, retry_after)] * count)

    @property
    def token_url(self) -> str:
        """The token endpoint: `/auth/token` on the server's origin."""
        return self.base_url.rsplit("/", 1)[0] + "/auth/token"

    def register_client(self, client_id: str, secret: str | None = None) -> None:
        """Register an OAuth client (with a secret for HTTP Basic client authentication)."""
        self.oauth.register_client(client_id, secret=secret)

    def register_key(self, client_id: str, public_key: Any, key_id: str) -> None:
        """Register a SMART Backend Services client's public key (PEM or `cryptography` key) as `kid`."""
        self.oauth.register_key(client_id, public_key, key_id)

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        self.oauth.expire_tokens()

    @property
    def token_requests(self) -> int:
        """How many token requests the token endpoint has answered (issued or refused)."""
        return self.oauth.requests
