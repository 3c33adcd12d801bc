"""What every MQTT transport to a real broker shares: its settings and identity."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mqttpush.transport.base import Transport

if TYPE_CHECKING:
    from mqttpush.servers import Server
    from mqttpush.settings import BrokerSettings

__all__ = ["BrokerTransport"]


class BrokerTransport(Transport):
    """A transport to the broker ``settings`` name; subclasses implement the connection.

    It connects to the first of ``broker.servers`` (or ``host:port``) until told to
    :meth:`use` another node.

    Args:
        settings: Where the broker is and how to connect.
    """

    def __init__(self, settings: BrokerSettings) -> None:
        self._base = self._settings = settings
        self.use(settings.server_list()[0])
        self._client_id = settings.client_id or f"mqttpush-{uuid.uuid4().hex[:16]}"
        self._generation = 0
        self._session_present = False

    def use(self, server: Server) -> None:
        """Connect to ``server`` from the next connect on, with the same settings otherwise."""
        self._settings = self._base.model_copy(
            update={"host": server.host, "port": server.port, "tls": self._base.tls or server.tls}
        )

    @property
    def client_id(self) -> str:
        """The MQTT client identifier."""
        return self._client_id

    @property
    def session_present(self) -> bool:
        """Whether the broker resumed a stored session on the last connect."""
        return self._session_present

    @property
    def persistent(self) -> bool:
        """Whether this connection keeps its session (fixed client id, session expiry > 0)."""
        return self._settings.client_id is not None and self._settings.session_expiry > 0

    @property
    def where(self) -> str:
        """``host:port`` of the broker, for messages."""
        return f"{self._settings.host}:{self._settings.port}"
