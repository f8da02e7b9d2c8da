"""The worker's HTTP API (Faust web views)."""

from streams.api.deps import ApiDeps
from streams.api.views import register_views

__all__ = ["ApiDeps", "register_views"]
