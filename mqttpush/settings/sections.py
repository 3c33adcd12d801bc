"""The smaller settings sections: calls, agents, metrics, tracing and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from mqttpush.address import Address, check_level

__all__ = [
    "AgentSettings",
    "DemoSettings",
    "MetricsSettings",
    "RpcSettings",
    "Section",
    "TracingSettings",
]


class Section(BaseModel):
    """The base of every settings section: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RpcSettings(Section):
    """Defaults for calls made and requests served."""

    timeout: float = Field(default=10.0, gt=0, description="Default call timeout, seconds.")
    max_concurrency: int = Field(
        default=64, ge=1, description="Requests and notifications one agent handles at once."
    )
    max_request_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest request payload an agent reads, in bytes; a larger one is "
        "answered -32600 without being parsed.",
    )
    confine_replies: bool = Field(
        default=False,
        description="Reply only to Response Topics under {prefix}/_reply/, so a caller cannot "
        "make an agent publish anywhere else (the secure profile turns it on).",
    )


_STORE_SCHEMES = frozenset({"postgresql", "postgres", "sqlite"})


class AgentSettings(Section):
    """Defaults for agents."""

    max_finished_tasks: int = Field(
        default=10_000, ge=1, description="Finished tasks kept for get_task_status."
    )
    max_finished_bytes: int = Field(
        default=16 << 20,
        ge=1,
        description="Bytes kept in memory for finished tasks: their params, results and errors "
        "as JSON, plus each delivery row an in-memory store keeps; the oldest go first (the "
        "task that ended last always stays).",
    )
    store_path: Path | None = Field(
        default=None,
        description="SQLite file for task state (tasks, endpoints, deliveries); "
        "in memory when unset.",
    )
    store_url: SecretStr | None = Field(
        default=None,
        description="Task store URL, instead of store_path: postgresql://USER@HOST:PORT/DB "
        "(one database shared by every copy of an agent; run 'mqttpush store migrate' first) "
        "or sqlite:///PATH. Keep passwords out of it: libpq reads PGPASSWORD and ~/.pgpass.",
    )
    store_pool_size: int = Field(
        default=10, ge=1, le=1000, description="PostgreSQL connections one process opens at most."
    )
    store_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a store operation waits for a PostgreSQL connection before it "
        "fails with StoreUnavailableError.",
    )
    store_lease_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a lease renewal or take-over may take on the PostgreSQL "
        "connection kept for them (outside the pool) before it is dropped and opened again.",
    )
    session_expiry: int = Field(
        default=3600,
        ge=0,
        description="Seconds the broker keeps a served agent's session (mqttpush serve).",
    )
    dedup_window: int = Field(
        default=10_000, ge=1, description="Notification ids remembered to drop duplicates."
    )
    response_cache: int = Field(
        default=1_000, ge=1, description="Replies kept to answer a repeated request."
    )
    response_cache_bytes: int = Field(
        default=16 << 20,
        ge=1,
        description="Bytes of replies kept to answer repeated requests; the oldest go first.",
    )
    shared_reply_cache: int = Field(
        default=10_000,
        ge=1,
        description="Replies a pool keeps in its store to answer a request repeated on "
        "another copy; the oldest go first.",
    )
    shared_reply_cache_bytes: int = Field(
        default=64 << 20,
        ge=1,
        description="Bytes of replies (and their keys) a pool keeps in its store, at most.",
    )
    shared_reply_max_bytes: int = Field(
        default=64 << 10,
        ge=1,
        description="A larger reply is not kept in a pool's store: a repeat of its request "
        "on another copy runs again.",
    )
    receipt_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for an endpoint's receipt before resending."
    )
    delivery_attempts: int = Field(
        default=5, ge=1, description="Publications of one notification to one endpoint, at most."
    )
    delivery_window: int = Field(
        default=100,
        ge=1,
        description="Notifications per endpoint that may wait for a receipt; more wait.",
    )
    publish_backlog: int = Field(
        default=1_000,
        ge=1,
        description="Notifications being published at once (to the broker's PUBACK), across "
        "all endpoints; more pushes wait, so requests are served between them.",
    )
    require_push_token: bool = Field(
        default=False,
        description="Reject notifications that do not carry the token the agent registered "
        "for their task (tasks registered without a token included).",
    )
    publish_window: float = Field(
        default=30.0, gt=0, description="Seconds a publish is retried while the broker is away."
    )
    presence: bool = Field(
        default=True,
        description="Publish each served agent's retained presence card, on a connection of "
        "its own whose Will marks it offline.",
    )
    pool: str | None = Field(
        default=None,
        description="Serve each agent as one copy of this pool: copies share its requests and "
        "notifications ($share/{pool}/...) and must share a store (store_url); "
        "docs/scaling.md.",
    )
    lease_ttl: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a pool copy owns a running task unless it renews (every third of "
        "it); another copy takes over a dead copy's tasks within about 1.33x this.",
    )

    @field_validator("pool")
    @classmethod
    def _pool_is_a_level(cls, value: str | None) -> str | None:
        return None if value is None else check_level(value, "pool name")

    @field_validator("store_url")
    @classmethod
    def _store_url_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = value.get_secret_value().partition(":")[0].lower()
            if scheme not in _STORE_SCHEMES:
                raise ValueError(f"store_url must start with one of {sorted(_STORE_SCHEMES)}")
        return value

    @model_validator(mode="after")
    def _one_store(self) -> Self:
        if self.store_url is not None and self.store_path is not None:
            raise ValueError("store_url and store_path are both set: choose one")
        return self


class MetricsSettings(Section):
    """Prometheus metrics of ``mqttpush serve`` (the ``metrics`` extra)."""

    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve the metrics over HTTP on this port (0: any free one); off when unset.",
    )
    host: str = Field(default="127.0.0.1", description="Address the metrics server binds.")


class TracingSettings(Section):
    """OpenTelemetry tracing (the ``tracing`` extra)."""

    enabled: bool = Field(
        default=False,
        description="Open spans and carry the W3C trace context in user properties.",
    )
    export_file: Path | None = Field(
        default=None,
        description="The mqttpush command writes finished spans here, one JSON object per "
        "line (needs opentelemetry-sdk); implies enabled.",
    )


class DemoSettings(Section):
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
