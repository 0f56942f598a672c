"""Forwarding headers count only from trusted proxies."""

from __future__ import annotations

from aftercare.security.clients import client_origin, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "192.168.1.5"])


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    origin = client_origin("203.0.113.9", "http", "198.51.100.1", "https", PROXIES)
    assert (origin.address, origin.https) == ("203.0.113.9", False)


def test_behind_trusted_proxies_the_first_untrusted_address_from_the_right_is_the_client() -> None:
    origin = client_origin("10.1.2.3", "http", "6.6.6.6, 198.51.100.7, 192.168.1.5", "https", PROXIES)
    assert (origin.address, origin.https) == ("198.51.100.7", True)


def test_no_proxies_configured_means_forwarding_headers_are_ignored() -> None:
    origin = client_origin("10.1.2.3", "https", "198.51.100.7", "http", ())
    assert (origin.address, origin.https) == ("10.1.2.3", True)
