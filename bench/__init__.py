"""Benchmarks: each prints its figures; the README records them."""
