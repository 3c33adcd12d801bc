"""mqttpush: agent-to-agent push notifications and JSON-RPC over MQTT 5."""

from mqttpush.address import Address, Topics
from mqttpush.agent.background import BackgroundTaskAgent, TaskContext
from mqttpush.agent.base import Agent, AgentStats
from mqttpush.agent.operation import operation
from mqttpush.agent.remote import RemoteAgent
from mqttpush.errors import (
    AccessDeniedError,
    AuthenticationError,
    BrokerUnavailableError,
    ConfigurationError,
    ConnectionLostError,
    InternalError,
    InvalidAddressError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    MqttPushError,
    ParseError,
    ProtocolError,
    RequestExpiredError,
    RpcError,
    RpcTimeoutError,
    SessionTakenOverError,
    StoreError,
    StoreSchemaError,
    StoreUnavailableError,
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
from mqttpush.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Address",
    "Agent",
    "AgentStats",
    "AuthenticationError",
    "BackgroundTaskAgent",
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
    "ParseError",
    "ProtocolError",
    "PushNotification",
    "RemoteAgent",
    "RequestExpiredError",
    "RpcError",
    "RpcTimeoutError",
    "SessionTakenOverError",
    "Settings",
    "StoreError",
    "StoreSchemaError",
    "StoreUnavailableError",
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
