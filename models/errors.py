"""The one exception base of the ``models`` package."""

from __future__ import annotations

__all__ = ["ArtifactError", "ModelError"]


class ModelError(Exception):
    """A model could not be loaded or run; the message says what to do about it."""


class ArtifactError(ModelError):
    """A trained artifact (e.g. the sentiment head) is missing, unreadable or inconsistent."""
