"""Helpers for tests that run escucha as real processes."""
