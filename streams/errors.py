"""Errors of the worker and its tools (each message says what to do)."""

from schemas.errors import InterestStreamError


class SettingsError(InterestStreamError, ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


class BrokerUnreachable(InterestStreamError, ConnectionError):
    """The broker did not answer within the configured wait."""


class TopicLayoutError(InterestStreamError, RuntimeError):
    """Existing topics have partition counts the app cannot work with; the message says which."""


class WebhookError(InterestStreamError, RuntimeError):
    """The alert webhook refused an alert or could not be reached."""


class ReplayError(InterestStreamError, ValueError):
    """A replay file line that cannot be routed (no or unknown 'type', no key field)."""


class EvalDataMissing(InterestStreamError, RuntimeError):
    """A dataset package file for the eval is missing or altered; the message says how to fetch it."""


class BrokerUnavailable(InterestStreamError, RuntimeError):
    """The bundled broker could not be started (binary missing, or it did not answer)."""


class WorkerFailed(InterestStreamError, RuntimeError):
    """A worker process started by a tool or test exited or did not become ready."""


class EvalError(InterestStreamError, RuntimeError):
    """The eval cannot do what was asked (a missing optional package, an unreadable saved report)."""


class ToolError(InterestStreamError, RuntimeError):
    """A tool cannot do what was asked with what this machine has; the message says what is missing."""
