"""The processes `aftercare worker` and `aftercare api` start are named, not imported (the CLI sits in the
domain package, below the composition roots): the names resolve to what the commands call."""

from __future__ import annotations

import inspect
import pkgutil

from fastapi import FastAPI

from aftercare.cli import API_FACTORY, WORKER_ENTRY_POINT
from api.app import create_served_app


def test_the_worker_entry_point_is_worker_main_and_takes_no_arguments() -> None:
    run_worker = pkgutil.resolve_name(WORKER_ENTRY_POINT)
    assert (run_worker.__module__, run_worker.__name__) == ("worker", "main")
    assert not inspect.signature(run_worker).parameters


def test_the_api_factory_is_the_served_app_factory_and_takes_no_arguments() -> None:
    factory = pkgutil.resolve_name(API_FACTORY)
    assert factory is create_served_app
    assert not inspect.signature(factory).parameters
    assert inspect.signature(factory).return_annotation in (FastAPI, "FastAPI")
