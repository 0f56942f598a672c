"""Checking that the ports the stack needs are free before anything starts."""

from __future__ import annotations

import errno
import socket


class PortTakenError(RuntimeError):
    """One or more ports are already in use."""


def port_is_free(host: str, port: int) -> bool:
    """True when a listening socket can bind `host:port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers themselves do: sockets left in TIME_WAIT by a previous run do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def ensure_ports_free(host: str, ports: dict[str, int]) -> None:
    """Raise `PortTakenError` naming every taken port and the option that moves it."""
    taken = [
        f"{name} port {port} on {host} is already in use (use --{name}-port)"
        for name, port in ports.items()
        if not port_is_free(host, port)
    ]
    if taken:
        raise PortTakenError("; ".join(taken))
