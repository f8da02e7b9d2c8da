"""The root of interest-stream's exceptions, and the one for refused input.

Every package's own errors derive from :class:`InterestStreamError` (``encoders/errors.py``,
``index/errors.py``, ``streams/errors.py``), so a caller can catch ours apart from library errors.
Each says in its message what to do about it.
"""


class InterestStreamError(Exception):
    """Base class of every error interest-stream raises on purpose."""


class InvalidEvent(InterestStreamError, ValueError):
    """A record that cannot be accepted; ``reason`` says why in words an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
