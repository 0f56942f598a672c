"""A client interceptor that reports a call to Temporal made while the calling task holds a database
connection (aftercare/db/connection_discipline.py): during a Temporal outage such a call keeps a
transaction open, and the pool drains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.client import Interceptor, OutboundInterceptor

from aftercare.db.connection_discipline import note_outside_call

_WATCHED = (
    "start_workflow",
    "signal_workflow",
    "describe_workflow",
    "query_workflow",
    "start_workflow_update",
    "start_update_with_start_workflow",
    "cancel_workflow",
    "terminate_workflow",
    "create_schedule",
    "describe_schedule",
    "update_schedule",
    "delete_schedule",
    "pause_schedule",
    "unpause_schedule",
    "trigger_schedule",
)


def _watched(name: str) -> Callable[..., Any]:
    async def call(self: OutboundInterceptor, input: Any) -> Any:
        note_outside_call(f"temporal {name}")
        return await getattr(self.next, name)(input)

    call.__name__ = name
    return call


class _WatchedOutbound(OutboundInterceptor):
    pass


for _name in _WATCHED:
    setattr(_WatchedOutbound, _name, _watched(_name))


class ConnectionFreeCalls(Interceptor):
    """Install on every Temporal client: calls made while holding a connection are recorded."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """Wrap the client's outbound calls."""
        return _WatchedOutbound(next)
