"""Where a request comes from: the peer's address, or the client named in `X-Forwarded-For` when the
peer is a trusted proxy (`TRUSTED_PROXIES`); and whether it reached the edge over https."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES` entries: addresses or CIDR ranges."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


@dataclass(frozen=True)
class ClientOrigin:
    """The client's address and the scheme it used."""

    address: str | None
    https: bool


def client_origin(
    peer: str | None,
    scheme: str,
    forwarded_for: str | None,
    forwarded_proto: str | None,
    trusted: tuple[Network, ...],
) -> ClientOrigin:
    """Believe forwarding headers only from trusted proxies: walk `X-Forwarded-For` from the right,
    past the trusted proxies, to the first address that is not one."""
    if not _trusted(peer, trusted):
        return ClientOrigin(peer, scheme == "https")
    address = peer
    for hop in reversed([part.strip() for part in (forwarded_for or "").split(",") if part.strip()]):
        address = hop
        if not _trusted(hop, trusted):
            break
    proto = (forwarded_proto or scheme).split(",")[0].strip().lower()
    return ClientOrigin(address[:64] if address else None, proto == "https")
