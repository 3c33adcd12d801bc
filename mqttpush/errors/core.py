"""The root of the exception tree and the library's own errors (the tree: mqttpush.errors)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "AgentOfflineError",
    "AuthenticationError",
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "ConnectionLostError",
    "FabricClosedError",
    "InvalidAddressError",
    "InvalidNotificationError",
    "MqttPushError",
    "PacketRefusedError",
    "ProtocolError",
    "RpcTimeoutError",
    "SessionTakenOverError",
    "StoreError",
    "StoreSchemaError",
    "StoreUnavailableError",
    "TaskFailedError",
    "TaskStateError",
    "TlsError",
    "TransportError",
    "UsageError",
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
