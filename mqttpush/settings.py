"""Settings, in small sections: a profile file, overridden by ``MQTTPUSH_*`` variables.

Nested fields use a double underscore: ``MQTTPUSH_BROKER__PORT=1884``,
``MQTTPUSH_DEMO__NOTIFICATION_INTERVAL=0``. :meth:`Settings.load` also reads the
profile ``{MQTTPUSH_CONFIG_DIR}/{MQTTPUSH_PROFILE}.toml`` (``config/open.toml``,
``config/secure.toml``); environment variables win over the file, the file over the
defaults. Invalid values raise :class:`~mqttpush.errors.ConfigurationError`, which
names each setting.
"""

from __future__ import annotations

import difflib
import logging
import os
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mqttpush.address import DEFAULT_PREFIX, Address, check_level, check_prefix
from mqttpush.errors import ConfigurationError, InvalidAddressError
from mqttpush.servers import Server, parse_servers

if TYPE_CHECKING:
    from collections.abc import Mapping

_profile_file: ContextVar[Path | None] = ContextVar("mqttpush_profile_file", default=None)
log = logging.getLogger(__name__)

_PREFIX = "MQTTPUSH_"
# MQTTPUSH_* names that are not settings but are read elsewhere: the profile choice
# (Settings.load), and the test suite's own switches (tests/conftest.py).
_OTHER_VARIABLES = ("PROFILE", "CONFIG_DIR")
_OTHER_PREFIXES = ("TEST_",)

__all__ = [
    "AgentSettings",
    "BrokerSettings",
    "DemoSettings",
    "MetricsSettings",
    "RpcSettings",
    "Settings",
    "TracingSettings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    """How to reach the broker."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Nodes of one broker cluster, instead of host and port: host:port, "
        "mqtt://host:port or mqtts://host:port, separated by commas in the environment. "
        "The client connects to the first that answers and fails over to the others.",
    )
    username: str | None = None
    password: SecretStr | None = None
    password_file: FilePath | None = Field(
        default=None,
        description="File holding the password (first line), instead of password; "
        "keeps it out of the environment and the process list.",
    )
    client_id: str | None = Field(
        default=None, description="MQTT client id; a random one per process when unset."
    )
    keepalive: int = Field(default=30, ge=5, le=65535)
    connect_timeout: float = Field(default=5.0, gt=0)
    reconnect_min_delay: float = Field(default=0.1, gt=0)
    reconnect_max_delay: float = Field(default=5.0, gt=0)
    session_expiry: int = Field(
        default=0,
        ge=0,
        le=4_294_967_295,
        description="Seconds the broker keeps this client's session (and queues its QoS 1 "
        "messages) while it is away; used only with a fixed client_id. 0: no session.",
    )
    receive_maximum: int = Field(
        default=100,
        ge=1,
        le=65_535,
        description="QoS 1 messages the broker may send before they are acknowledged: "
        "the backpressure window of a slow handler.",
    )
    maximum_packet_size: int = Field(
        default=2 << 20,
        ge=64,
        le=268_435_460,
        description="Largest packet, in bytes, this client accepts from the broker (announced "
        "as MQTT 5 Maximum Packet Size; a larger one ends the connection before it is read).",
    )
    inbox_max_messages: int = Field(
        default=1_000,
        ge=1,
        description="Received messages waiting for a handler before the client stops reading "
        "its socket (QoS 0 included); reading resumes at half.",
    )
    inbox_max_bytes: int = Field(
        default=16 << 20,
        ge=1,
        description="Payload bytes waiting for a handler before the client stops reading its "
        "socket; reading resumes at half.",
    )
    client: Literal["native", "aiomqtt"] = Field(
        default="native",
        description="MQTT client: the built-in asyncio one (fastest), or aiomqtt on paho-mqtt.",
    )
    tls: bool = Field(default=False, description="Use TLS (implied by ca_file or cert_file).")
    ca_file: FilePath | None = Field(default=None, description="CA bundle to verify the broker.")
    cert_file: FilePath | None = Field(default=None, description="Client certificate (PEM).")
    key_file: FilePath | None = Field(default=None, description="Client key (PEM), with cert_file.")

    @field_validator("servers", mode="before")
    @classmethod
    def _servers_are_addresses(cls, value: object) -> object:
        if isinstance(value, str | list):
            return [str(server) for server in parse_servers(value)]
        return value

    def server_list(self) -> list[Server]:
        """The broker nodes to try, in order: ``servers``, else ``host:port``."""
        return parse_servers(self.servers) or [Server(self.host, self.port)]

    @model_validator(mode="after")
    def _key_needs_cert(self) -> Self:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set but cert_file is not")
        return self

    def secret(self) -> str | None:
        """The password to send: ``password``, else the first line of ``password_file``.

        Raises:
            ConfigurationError: The password file cannot be read.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"broker.password_file {self.password_file}: {exc}") from exc
        return text.splitlines()[0] if text else ""

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is made over TLS."""
        return self.tls or self.ca_file is not None or self.cert_file is not None

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


class AgentSettings(_Section):
    """Defaults for agents."""

    max_finished_tasks: int = Field(
        default=10_000, ge=1, description="Finished tasks kept for get_task_status."
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


class MetricsSettings(_Section):
    """Prometheus metrics of ``mqttpush serve`` (the ``metrics`` extra)."""

    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve the metrics over HTTP on this port (0: any free one); off when unset.",
    )
    host: str = Field(default="127.0.0.1", description="Address the metrics server binds.")


class TracingSettings(_Section):
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
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_valid(cls, value: str) -> str:
        return check_prefix(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order of precedence: arguments, then the environment, then the profile file."""
        path = _profile_file.get()
        if path is None:
            return init_settings, env_settings
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=path)

    @classmethod
    def load(
        cls,
        profile: str | None = None,
        config_dir: str | Path | None = None,
        **overrides: Any,  # noqa: ANN401 - any section or value a Settings field takes
    ) -> Self:
        """Read a profile file and the environment.

        Args:
            profile: The profile name; defaults to ``MQTTPUSH_PROFILE``. Without one,
                only the environment and the defaults count.
            config_dir: Where profiles live; defaults to ``MQTTPUSH_CONFIG_DIR``, then
                ``config``.
            **overrides: Values that win over everything else.

        Raises:
            ConfigurationError: The profile file is missing or a value is invalid;
                the message names every offending setting.
        """
        _warn_unknown_variables(os.environ, cls)
        profile = profile or os.environ.get("MQTTPUSH_PROFILE") or None
        path: Path | None = None
        if profile is not None:
            try:
                check_level(profile, "profile name")
            except InvalidAddressError as exc:
                raise ConfigurationError(str(exc)) from None
            directory = Path(config_dir or os.environ.get("MQTTPUSH_CONFIG_DIR") or "config")
            path = directory / f"{profile}.toml"
            if not path.is_file():
                raise ConfigurationError(f"profile {profile!r}: no file {path}")
        token = _profile_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            where = f"profile {path} or " if path else ""
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigurationError(
                f"invalid settings (from {where}MQTTPUSH_* variables): {problems}"
            ) from exc
        finally:
            _profile_file.reset(token)


def _unknown_variables(environ: Mapping[str, str], settings_cls: type[BaseSettings]) -> list[str]:
    """Return a sentence for each ``MQTTPUSH_*`` variable that names no setting.

    A misspelled nested name (``MQTTPUSH_BROKER__PORTT``) is refused when the settings
    load; a misspelled section or top-level name (``MQTTPUSH_BORKER__PORT``) would be
    ignored silently, so it is named here, with the closest known spelling.
    """
    fields = [name.upper() for name in settings_cls.model_fields]
    known = [*fields, *_OTHER_VARIABLES]
    found = []
    for name in sorted(environ):
        if not name.startswith(_PREFIX):
            continue
        rest = name.removeprefix(_PREFIX)
        head = rest.split("__", 1)[0]
        if head in fields or rest in _OTHER_VARIABLES or rest.startswith(_OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(head, known, n=1)
        hint = f"; did you mean {_PREFIX}{close[0]}{rest[len(head) :]}?" if close else ""
        found.append(f"ignoring {name}: mqttpush has no setting {head.lower()!r}{hint}")
    return found


def _warn_unknown_variables(environ: Mapping[str, str], settings_cls: type[BaseSettings]) -> None:
    for sentence in _unknown_variables(environ, settings_cls):
        log.warning("%s", sentence)
