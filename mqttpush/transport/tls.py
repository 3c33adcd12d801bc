"""The TLS context of a broker connection, shared by every MQTT transport."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError

if TYPE_CHECKING:
    from mqttpush.settings import BrokerSettings

__all__ = ["tls_context"]


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """The TLS context ``settings`` ask for, or None for plain TCP.

    Raises:
        ConfigurationError: The TLS files cannot be loaded.
    """
    s = settings
    if not s.uses_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=s.ca_file)
        if s.cert_file is not None:
            context.load_cert_chain(s.cert_file, s.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"broker TLS files (ca_file={s.ca_file}, cert_file={s.cert_file}, "
            f"key_file={s.key_file}) cannot be loaded: {exc}"
        ) from exc
    return context
