"""Tests of aftercare/enrollment."""
