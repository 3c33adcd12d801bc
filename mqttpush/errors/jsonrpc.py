"""JSON-RPC error objects as exceptions, one subclass per code (the tree: mqttpush.errors)."""

from __future__ import annotations

from typing import Any, ClassVar

from mqttpush.errors.core import MqttPushError

__all__ = [
    "InternalError",
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "ParseError",
    "RequestExpiredError",
    "RpcError",
    "TaskFinishedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "rpc_error_from_code",
]


class RpcError(MqttPushError):
    """A JSON-RPC error: raised by handlers to answer with it, raised by callers on receipt.

    Attributes:
        code: The JSON-RPC error code.
        message: The short, human-readable description.
        data: Optional structured detail (validation errors, exception type, ...).
    """

    code: ClassVar[int] = -32000
    default_message: ClassVar[str] = "Server error"

    def __init__(self, message: str | None = None, data: Any = None) -> None:  # noqa: ANN401 - JSON value
        self.message = message or self.default_message
        self.data = data
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-RPC error object for this error."""
        wire: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            wire["data"] = self.data
        return wire


class ParseError(RpcError):
    """The payload is not valid JSON."""

    code = -32700
    default_message = "Parse error"


class InvalidRequestError(RpcError):
    """The payload is JSON but not a valid JSON-RPC 2.0 request object."""

    code = -32600
    default_message = "Invalid request"


class MethodNotFoundError(RpcError):
    """The agent has no operation of that name."""

    code = -32601
    default_message = "Method not found"


class InvalidParamsError(RpcError):
    """The params do not validate against the operation's signature."""

    code = -32602
    default_message = "Invalid params"


class InternalError(RpcError):
    """The operation raised an unexpected exception."""

    code = -32603
    default_message = "Internal error"


class TaskNotFoundError(RpcError):
    """No task with that id is known to the agent."""

    code = -32001
    default_message = "Task not found"


class TaskNotCancelableError(RpcError):
    """The task has already reached a terminal state."""

    code = -32002
    default_message = "Task cannot be canceled"


class RequestExpiredError(RpcError):
    """The request's message expiry passed before the agent could start it; it was not run."""

    code = -32003
    default_message = "Request expired"


class TaskFinishedError(RpcError):
    """The task has already ended, so the request (e.g. a new push endpoint) has no effect."""

    code = -32004
    default_message = "Task already finished"


_BY_CODE: dict[int, type[RpcError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        InvalidRequestError,
        MethodNotFoundError,
        InvalidParamsError,
        InternalError,
        TaskNotFoundError,
        TaskNotCancelableError,
        RequestExpiredError,
        TaskFinishedError,
    )
}


def rpc_error_from_code(code: int, message: str, data: Any = None) -> RpcError:  # noqa: ANN401
    """Build the :class:`RpcError` subclass for a JSON-RPC error code received on the wire.

    Unknown codes give a plain :class:`RpcError` that keeps the received code.
    """
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message, data)
    error = RpcError(message, data)
    error.code = code  # type: ignore[misc]  # keep an application-defined code as received
    return error
