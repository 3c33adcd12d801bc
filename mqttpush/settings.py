"""Settings, in small sections, read from ``MQTTPUSH_*`` environment variables.

Nested fields use a double underscore: ``MQTTPUSH_BROKER__PORT=1884``,
``MQTTPUSH_DEMO__NOTIFICATION_INTERVAL=0``. Invalid values raise pydantic's
``ValidationError``, which names the setting.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mqttpush.address import DEFAULT_PREFIX, Address, check_level, check_prefix

__all__ = ["AgentSettings", "BrokerSettings", "DemoSettings", "RpcSettings", "Settings"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    """How to reach the broker."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = Field(
        default=None, description="MQTT client id; a random one per process when unset."
    )
    keepalive: int = Field(default=30, ge=5, le=65535)
    connect_timeout: float = Field(default=5.0, gt=0)
    reconnect_min_delay: float = Field(default=0.1, gt=0)
    reconnect_max_delay: float = Field(default=5.0, gt=0)

    @field_validator("client_id")
    @classmethod
    def _client_id_is_a_level(cls, value: str | None) -> str | None:
        return None if value is None else check_level(value, "client id")


class RpcSettings(_Section):
    """Defaults for calls made and requests served."""

    timeout: float = Field(default=10.0, gt=0, description="Default call timeout, seconds.")
    max_concurrency: int = Field(
        default=64, ge=1, description="Requests and notifications one agent handles at once."
    )


class AgentSettings(_Section):
    """Defaults for agents."""

    max_finished_tasks: int = Field(
        default=10_000, ge=1, description="Finished tasks kept for get_task_status."
    )


class DemoSettings(_Section):
    """The seed scenario: addresses and the sender's notification loop."""

    sender_address: str = "sender@fame.fabric"
    receiver_address: str = "receiver@fame.fabric"
    notification_count: int = Field(default=9, ge=0, le=1_000_000)
    notification_interval: float = Field(default=0.2, ge=0)
    task_timeout: float = Field(
        default=120.0, gt=0, description="How long the receiver waits for the sender's task."
    )

    @field_validator("sender_address", "receiver_address")
    @classmethod
    def _is_address(cls, value: str) -> str:
        return str(Address.parse(value))


class Settings(BaseSettings):
    """All settings; each section can be overridden from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="MQTTPUSH_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    topic_prefix: str = DEFAULT_PREFIX
    broker: BrokerSettings = BrokerSettings()
    rpc: RpcSettings = RpcSettings()
    agent: AgentSettings = AgentSettings()
    demo: DemoSettings = DemoSettings()

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_valid(cls, value: str) -> str:
        return check_prefix(value)
