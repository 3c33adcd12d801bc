"""Opening a connection: the TLS context, and the CONNECT/CONNACK handshake of a link.

Every way the handshake can fail, a refusal by the broker included, becomes a
:class:`~mqttpush.errors.BrokerUnavailableError` that says why.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from mqttpush.errors import (
    AuthenticationError,
    BrokerUnavailableError,
    ConnectionLostError,
    TlsError,
)
from mqttpush.transport.reasons import CREDENTIALS_REFUSED, reason_text

if TYPE_CHECKING:
    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.native.link import Link
    from mqttpush.transport.native.packets import ConnAck

__all__ = ["handshake"]

_NO_CERT = " (the broker refused this client's certificate, or none was given)"
# TLS alerts by which a broker refuses the client's certificate.
_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN")


def _unavailable(where: str, cause: str) -> BrokerUnavailableError:
    """The error of a failed connect to the broker at ``where``."""
    return BrokerUnavailableError(f"cannot connect to the MQTT broker at {where}: {cause}")


def _failure(where: str, exc: Exception, link: Link, timeout: float) -> BrokerUnavailableError:
    """The error for a connect that failed before the broker's CONNACK, naming the cause."""
    if isinstance(exc, TimeoutError):
        return _unavailable(where, f"no answer within {timeout:g} s")
    if isinstance(exc, ssl.SSLCertVerificationError):
        cause = f"the broker's TLS certificate is not trusted: {exc.verify_message or exc}"
        return TlsError(f"cannot connect to the MQTT broker at {where}: {cause}")
    tls_failure = exc if isinstance(exc, ssl.SSLError) else link.lost_cause
    if isinstance(tls_failure, ssl.SSLError):
        # With TLS 1.3 the broker refuses a client certificate after the handshake, so
        # this shows up as the connection closing before the CONNACK.
        cause = f"TLS handshake failed: {tls_failure.reason or tls_failure}"
        if any(alert in str(tls_failure.reason or "").upper() for alert in _CERT_ALERTS):
            cause += _NO_CERT
        return TlsError(f"cannot connect to the MQTT broker at {where}: {cause}")
    if isinstance(exc, ConnectionRefusedError):
        return _unavailable(where, "connection refused")
    if isinstance(exc, ConnectionLostError):
        return _unavailable(where, "the connection closed before the broker's CONNACK")
    return _unavailable(where, getattr(exc, "strerror", None) or str(exc))


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
    except (TimeoutError, OSError, ConnectionLostError) as exc:
        raise _failure(where, exc, link, s.connect_timeout) from exc
    finally:
        if not connected:
            link.drop("connect failed")
            if link.connack.done() and not link.connack.cancelled():
                link.connack.exception()  # retrieved: nobody else will look at it
    if connack.reason_code:
        code = connack.reason_code
        why = f": {connack.reason_string}" if connack.reason_string else ""
        if code in CREDENTIALS_REFUSED:
            user = f"user {s.username!r}" if s.username else "an anonymous client"
            raise AuthenticationError(
                f"cannot connect to the MQTT broker at {where}: it refused {user}: "
                f"{reason_text(code)}{why}",
                reason_code=code,
            )
        raise BrokerUnavailableError(
            f"cannot connect to the MQTT broker at {where}: the broker refused the "
            f"connection with {reason_text(code)}{why}",
            reason_code=code,
            server_reference=connack.server_reference,
        )
    return connack
