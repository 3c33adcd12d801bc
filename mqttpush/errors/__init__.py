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

from mqttpush.errors.core import (
    AccessDeniedError,
    AgentOfflineError,
    AuthenticationError,
    BrokerRefusedError,
    BrokerUnavailableError,
    ConfigurationError,
    ConnectionLostError,
    FabricClosedError,
    InvalidAddressError,
    InvalidNotificationError,
    MqttPushError,
    PacketRefusedError,
    ProtocolError,
    RpcTimeoutError,
    SessionTakenOverError,
    StoreError,
    StoreSchemaError,
    StoreUnavailableError,
    TaskFailedError,
    TaskStateError,
    TlsError,
    TransportError,
    UsageError,
)
from mqttpush.errors.jsonrpc import (
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    ParseError,
    RequestExpiredError,
    RpcError,
    TaskFinishedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    rpc_error_from_code,
)

__all__ = [
    "AccessDeniedError",
    "AgentOfflineError",
    "AuthenticationError",
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
    "TlsError",
    "TransportError",
    "UsageError",
    "rpc_error_from_code",
]
