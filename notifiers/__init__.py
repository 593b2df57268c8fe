"""Channels: one module each behind the tiny protocol in ``base``; retries only in ``retry``."""
