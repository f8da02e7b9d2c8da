"""Errors of the index package."""

from schemas.errors import InterestStreamError


class UnknownItem(InterestStreamError, KeyError):
    """An item id that is not (or no longer) in the index."""


class IndexConfigError(InterestStreamError, ValueError):
    """An index setting that cannot work (factory string, facet weights, device)."""
