"""The broker section: where and how to connect (``MQTTPUSH_BROKER__*``)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    NoDecode,
)

from mqttpush.address import check_level
from mqttpush.errors import ConfigurationError
from mqttpush.servers import Server, parse_servers
from mqttpush.settings.sections import Section

__all__ = ["BrokerSettings"]


class BrokerSettings(Section):
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
    strict_receive_maximum: bool = Field(
        default=False,
        description="Disconnect with 0x93 when the broker sends more unacknowledged QoS 1 "
        "messages than receive_maximum (MQTT 5 3.3.4). Off by default: Mosquitto 2.0.11 "
        "overruns it after a run of PUBACKs; the inbox bound holds either way.",
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
