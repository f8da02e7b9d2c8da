"""The running worker: handlers for user, item and news events (each gets a ``WorkerContext``),
topic administration, broker health, the alert webhook, and ``app.py``, which builds the Faust app
and wires them. Imports no tool (streams/tools)."""
