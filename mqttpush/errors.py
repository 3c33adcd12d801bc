"""The one exception tree of mqttpush.

Every error the library raises derives from :class:`MqttPushError`::

    MqttPushError
    ├── ConfigurationError             a missing profile or an invalid setting
    ├── UsageError                     mqttpush used out of order: not served, not open, ...
    │   ├── FabricClosedError          the fabric is not open, or is closing
    │   └── InvalidNotificationError   (also ValueError) data not matching the schema, bad priority
    ├── InvalidAddressError            (also ValueError)
    ├── ProtocolError                  a payload that does not follow docs/protocol.md
    │   ├── PacketRefusedError         a packet not sent: MQTT or the broker's limits forbid it
    │   └── BrokerRefusedError         the broker refused a publish or subscribe (reason code)
    │       └── AccessDeniedError      the broker's ACL refused it (0x87 not authorized)
    ├── TransportError
    │   ├── BrokerUnavailableError     the broker could not be reached or refused us
    │   │   ├── AuthenticationError    credentials refused: bad password, not authorized
    │   │   └── TlsError               TLS handshake or certificate verification failed
    │   └── ConnectionLostError        the connection dropped, or is not up
    │       └── SessionTakenOverError  another client connected with the same client id
    ├── AgentOfflineError              no agent is served at an address (its presence card says so)
    ├── RpcTimeoutError                (also TimeoutError) no reply within the timeout
    ├── TaskStateError                 a task change refused, e.g. after a terminal state
    ├── TaskFailedError                a task that was waited for ended failed or canceled
    ├── StoreError                     the task store failed: a query, a damaged row, closed
    │   ├── StoreUnavailableError      the store could not be reached (database down, pool timeout)
    │   └── StoreSchemaError           the schema is newer than this mqttpush, or not migrated
    └── RpcError                       a JSON-RPC error object, local or remote
        ├── ParseError                 -32700
        ├── InvalidRequestError        -32600
        ├── MethodNotFoundError        -32601
        ├── InvalidParamsError         -32602
        ├── InternalError              -32603
        ├── TaskNotFoundError          -32001
        ├── TaskNotCancelableError     -32002
        ├── RequestExpiredError        -32003
        └── TaskFinishedError          -32004

An :class:`RpcError` raised inside an operation handler is sent to the caller as
that error object; on the caller's side the reply is raised again as the subclass
matching its code, so ``except TaskNotFoundError`` works across the wire.
Errors from an MQTT client stack are translated in one place per stack: aiomqtt's and
paho's in ``mqttpush.transport.mqtt.transport``; socket and TLS errors of the native client in
``mqttpush.transport.native.connect`` (connecting) and ``...native.link`` (afterwards).
A broker's reason codes are read by number, in ``mqttpush.transport.reasons``, never
told apart by text. Errors from a store's database are translated in that store's module.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessDeniedError",
    "AgentOfflineError",
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "ConnectionLostError",
    "FabricClosedError",
    "InternalError",
    "InvalidAddressError",
    "InvalidNotificationError",
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "MqttPushError",
    "PacketRefusedError",
    "ParseError",
    "ProtocolError",
    "RequestExpiredError",
    "RpcError",
    "RpcTimeoutError",
    "SessionTakenOverError",
    "StoreError",
    "StoreSchemaError",
    "StoreUnavailableError",
    "TaskFailedError",
    "TaskFinishedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "TaskStateError",
    "TransportError",
    "UsageError",
    "rpc_error_from_code",
]


class MqttPushError(Exception):
    """Root of every error raised by mqttpush."""


class ConfigurationError(MqttPushError):
    """A profile file that is missing, or settings that do not validate."""


class UsageError(MqttPushError):
    """mqttpush was used out of order: an agent not served, or served twice; no open fabric."""


class FabricClosedError(UsageError):
    """The fabric is not open, or is closing: it starts no more tasks."""


class InvalidNotificationError(UsageError, ValueError):
    """A notification a task tried to push is invalid; nothing was published.

    Its data does not match the agent's ``notification_schema``, or its priority is unknown.
    """


class AgentOfflineError(MqttPushError):
    """No agent is served at an address: its presence card is missing or says offline.

    Attributes:
        address: The address that was checked.
        status: ``"offline"``, or ``"unknown"`` when no card was found.
    """

    def __init__(self, message: str, *, address: str, status: str) -> None:
        super().__init__(message)
        self.address = address
        self.status = status


class InvalidAddressError(MqttPushError, ValueError):
    """An agent address, name or topic prefix that cannot be mapped to MQTT topics."""


class ProtocolError(MqttPushError):
    """A message that does not follow the mqttpush wire protocol."""


class PacketRefusedError(ProtocolError):
    """A packet this client did not send: MQTT 5 or the broker's announced limits forbid it.

    Raised before anything reaches the socket, so the connection stays up: a packet over
    the broker's Maximum Packet Size, a topic filter with a misplaced wildcard, a topic
    name with a wildcard, a string MQTT cannot carry.
    """


class BrokerRefusedError(ProtocolError):
    """The broker answered a publish or a subscription with a refusal (reason 0x80 and above).

    Attributes:
        reason_code: The MQTT 5 reason code of the PUBACK or SUBACK.
        reason_text: The code with its name, e.g. ``reason code 0x97 (quota exceeded)``.
    """

    def __init__(self, message: str, reason_code: int, reason_text: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.reason_text = reason_text


class AccessDeniedError(BrokerRefusedError):
    """The broker refused a publish or a subscription (reason 0x87 "not authorized").

    With an ACL, each identity may use only its own topics (see docs/security.md).
    """


class TransportError(MqttPushError):
    """The connection to the broker failed.

    Attributes:
        reason_code: The MQTT 5 reason code the broker gave (its CONNACK refusal or its
            DISCONNECT), when it gave one; ``None`` for a drop without a word.
        server_reference: The broker's Server Reference (another server to use), if any.
    """

    def __init__(
        self, message: str, *, reason_code: int | None = None, server_reference: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.server_reference = server_reference


class BrokerUnavailableError(TransportError):
    """The broker could not be reached, or refused the connection."""


class AuthenticationError(BrokerUnavailableError):
    """The broker refused these credentials.

    Bad user name or password, not authorized, banned, or an authentication method the
    broker does not support.
    """


class TlsError(BrokerUnavailableError):
    """The TLS handshake failed.

    The broker's certificate is not trusted or does not match the host, or the broker
    refused this client's certificate.
    """


class ConnectionLostError(TransportError):
    """The connection to the broker dropped, or is not up."""


class SessionTakenOverError(ConnectionLostError):
    """Another client connected with this client id; this one must not reconnect."""


class RpcTimeoutError(MqttPushError, TimeoutError):
    """No reply arrived within the call's timeout.

    Attributes:
        address: The agent that was called.
        method: The operation that was called.
        timeout: The timeout that expired, in seconds.
    """

    def __init__(self, address: str, method: str, timeout: float) -> None:
        super().__init__(f"{method} on {address}: no reply within {timeout:g} s")
        self.address = address
        self.method = method
        self.timeout = timeout


class TaskStateError(MqttPushError):
    """A task state change that is not allowed, such as any change after a terminal state."""


class TaskFailedError(MqttPushError):
    """A task that was waited for ended failed or canceled.

    Attributes:
        status: The task's final status as a JSON object (``TaskStatus`` fields).
    """

    def __init__(self, message: str, status: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status


class StoreError(MqttPushError):
    """The task store failed: not opened, a query failed, a row did not decode, or closed."""


class StoreUnavailableError(StoreError):
    """The task store could not be reached: its database is down, or no connection came in time.

    The operation may succeed later; nothing was written by it.
    """


class StoreSchemaError(StoreError):
    """The store's schema is not the one this mqttpush knows.

    Either it is newer (written by a newer mqttpush: upgrade), or migrations are pending
    (run ``mqttpush store migrate``).
    """


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
