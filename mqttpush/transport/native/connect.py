"""Opening a connection: the TLS context, and the CONNECT/CONNACK handshake of a link.

Every way the handshake can fail, a refusal by the broker included, becomes a
:class:`~mqttpush.errors.BrokerUnavailableError` that says why.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from mqttpush.errors import BrokerUnavailableError, ConfigurationError, ConnectionLostError
from mqttpush.transport.native.reasons import reason_text

if TYPE_CHECKING:
    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.native.link import Link
    from mqttpush.transport.native.packets import ConnAck

__all__ = ["handshake", "tls_context"]


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


def _unavailable(where: str, cause: str) -> BrokerUnavailableError:
    """The error of a failed connect to the broker at ``where``."""
    return BrokerUnavailableError(f"cannot connect to the MQTT broker at {where}: {cause}")


async def handshake(
    link: Link, settings: BrokerSettings, context: ssl.SSLContext | None, connect_packet: bytes
) -> ConnAck:
    """Open ``link``'s socket, send ``connect_packet``, and return the broker's CONNACK.

    The link is dropped unless the broker accepts the connection.

    Raises:
        BrokerUnavailableError: The broker is unreachable, too slow, not trusted, or
            refused the connection (the message gives the CONNACK reason code).
    """
    s = settings
    loop = link.loop
    where = link.where
    connected = False
    try:
        async with asyncio.timeout(s.connect_timeout):
            await loop.create_connection(
                lambda: link,
                s.host,
                s.port,
                ssl=context,
                server_hostname=s.host if context is not None else None,
            )
            link.send(connect_packet)
            connack = await link.connack
        connected = connack.reason_code == 0
    except TimeoutError:
        raise _unavailable(where, f"no answer within {s.connect_timeout:g} s") from None
    except ssl.SSLCertVerificationError as exc:
        cause = f"TLS certificate verification failed: {exc.verify_message or exc}"
        raise _unavailable(where, cause) from exc
    except ssl.SSLError as exc:
        raise _unavailable(where, f"TLS handshake failed: {exc.reason or exc}") from exc
    except ConnectionRefusedError as exc:
        raise _unavailable(where, "connection refused") from exc
    except OSError as exc:
        raise _unavailable(where, exc.strerror or str(exc)) from exc
    except ConnectionLostError as exc:
        raise _unavailable(where, "the connection closed before the broker's CONNACK") from exc
    finally:
        if not connected:
            link.drop("connect failed")
            if link.connack.done() and not link.connack.cancelled():
                link.connack.exception()  # retrieved: nobody else will look at it
    if connack.reason_code:
        why = f": {connack.reason_string}" if connack.reason_string else ""
        raise _unavailable(
            where, f"the broker refused the connection with {reason_text(connack.reason_code)}{why}"
        )
    return connack
