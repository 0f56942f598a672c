"""A bounded fuzz run: schemathesis generates requests from the OpenAPI document for every operation,
sent with the all-roles key to the real app served over HTTP; no answer may be a 5xx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from tests.conftest import AUTH_HEADERS
from tests.prism import free_port

# Examples per operation: about 70 operations, so the whole run stays under a minute on two cores.
EXAMPLES = 25

# Journey and segment definitions are deep recursive unions: generating one takes Hypothesis minutes, so
# their publication is left to the definition tests (tests/models, tests/api/test_definitions.py).
RECURSIVE_DEFINITIONS = ["/v1/journeys", "/v1/segments"]

schema = schemathesis.openapi.from_dict(create_app().openapi()).exclude(
    method="POST", path=RECURSIVE_DEFINITIONS
)


@pytest.fixture(scope="module")
def served(settings: Settings, dev_server: WorkflowEnvironment) -> Iterator[str]:
    """The app on a free local port, in a thread with its own event loop and Temporal connection."""
    configured = settings.model_copy(
        update={
            "temporal_task_queue": "fuzz",
            "temporal_address": dev_server.client.service_client.config.target_host,
            "rate_limit_per_second": 0.0,
        }
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(configured), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the fuzzed app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_from_the_openapi_document_causes_a_server_error(
    case: schemathesis.Case, served: str
) -> None:
    response = case.call(base_url=served, headers=AUTH_HEADERS, timeout=10)
    # 502 and 503 are documented answers (an unreachable FHIR server, push not configured); 500 never is.
    assert response.status_code != 500, case.as_curl_command()
