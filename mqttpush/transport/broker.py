"""What every MQTT transport to a real broker shares: its settings and identity."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mqttpush.transport.base import Transport

if TYPE_CHECKING:
    from mqttpush.settings import BrokerSettings

__all__ = ["BrokerTransport"]


class BrokerTransport(Transport):
    """A transport to the broker ``settings`` name; subclasses implement the connection.

    Args:
        settings: Where the broker is and how to connect.
    """

    def __init__(self, settings: BrokerSettings) -> None:
        self._settings = settings
        self._client_id = settings.client_id or f"mqttpush-{uuid.uuid4().hex[:16]}"
        self._generation = 0
        self._session_present = False

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
