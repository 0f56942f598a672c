"""The OpenAPI document: every operation has its own id (client generators name methods after them), and
generating the document warns about nothing."""

from __future__ import annotations

import logging
import warnings
from collections import Counter

import pytest

from aftercare.settings import Settings
from api.app import create_app


def test_every_operation_id_is_unique_and_generating_the_document_warns_about_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)
    with warnings.catch_warnings(record=True) as warned, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        document = app.openapi()

    assert [str(warning.message) for warning in warned] == []
    assert [record.getMessage() for record in caplog.records] == []
    ids = Counter(
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    )
    assert [operation_id for operation_id, count in ids.items() if count > 1] == []
    notification = document["paths"]["/v1/fhir/notifications/{resource_type}/{resource_id}"]
    assert notification["put"]["operationId"].endswith("_put")
    assert notification["post"]["operationId"].endswith("_post")
