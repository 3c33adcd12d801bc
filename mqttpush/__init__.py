"""mqttpush: agent-to-agent push notifications and JSON-RPC over MQTT 5."""

from mqttpush.address import Address, Topics
from mqttpush.agent.background import BackgroundTaskAgent, TaskContext
from mqttpush.agent.base import Agent, AgentStats
from mqttpush.errors import (
    AccessDeniedError,
    AuthenticationError,
    BrokerRefusedError,
    BrokerUnavailableError,
    ConfigurationError,
    ConnectionLostError,
    InternalError,
    InvalidAddressError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    MqttPushError,
    PacketRefusedError,
    ParseError,
    ProtocolError,
    RequestExpiredError,
    RpcError,
    RpcTimeoutError,
    SessionTakenOverError,
    TaskFailedError,
    TaskFinishedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskStateError,
    TlsError,
    TransportError,
)
from mqttpush.fabric import Fabric
from mqttpush.models import (
    PushNotification,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    new_id,
)
from mqttpush.rpc.operation import operation
from mqttpush.rpc.remote import RemoteAgent
from mqttpush.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Address",
    "Agent",
    "AgentStats",
    "AuthenticationError",
    "BackgroundTaskAgent",
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "ConnectionLostError",
    "Fabric",
    "InternalError",
    "InvalidAddressError",
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "MqttPushError",
    "PacketRefusedError",
    "ParseError",
    "ProtocolError",
    "PushNotification",
    "RemoteAgent",
    "RequestExpiredError",
    "RpcError",
    "RpcTimeoutError",
    "SessionTakenOverError",
    "Settings",
    "TaskContext",
    "TaskFailedError",
    "TaskFinishedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "TaskPushNotificationConfig",
    "TaskState",
    "TaskStateError",
    "TaskStatus",
    "TlsError",
    "Topics",
    "TransportError",
    "new_id",
    "operation",
]
