"""Shared local fakes of external services (real servers on loopback, port 0)."""
