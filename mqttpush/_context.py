"""Context variables that follow a request through the tasks it starts."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["trace_id"]

#: The trace id of the request being handled; calls and pushes made while handling it
#: carry it on, so one trace id follows a whole flow across agents.
trace_id: ContextVar[str | None] = ContextVar("mqttpush_trace_id", default=None)
