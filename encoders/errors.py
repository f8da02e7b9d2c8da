"""Errors of the encoders package."""

from schemas.errors import InterestStreamError


class ModelLoadError(InterestStreamError, RuntimeError):
    """The transformer named in the settings could not be loaded."""


class EntityTableError(InterestStreamError, ValueError):
    """A ticker table (CSV) that cannot be read; the message names the file and line."""
