"""The MQTT 5 vocabulary both client stacks share: reason codes, and the refusal check.

Reason codes are told apart by number, never by the text of an error. The native client
(:mod:`mqttpush.transport.native`) and the aiomqtt one (:mod:`mqttpush.transport.mqtt`)
both name codes with :func:`reason_text` and turn a refusal into an exception with
:func:`check_refusal`, so the same refusal raises the same error on either.
"""

from __future__ import annotations

from mqttpush.errors import AccessDeniedError, BrokerRefusedError

__all__ = [
    "BACK_OFF",
    "CREDENTIALS_REFUSED",
    "MALFORMED_PACKET",
    "NORMAL",
    "NOT_AUTHORIZED",
    "NO_MATCHING_SUBSCRIBERS",
    "PACKET_TOO_LARGE",
    "PROTOCOL_ERROR",
    "RECEIVE_MAXIMUM_EXCEEDED",
    "REFUSED",
    "SESSION_TAKEN_OVER",
    "TOPIC_ALIAS_INVALID",
    "TOPIC_NAME_INVALID",
    "check_refusal",
    "reason_text",
]

NORMAL = 0x00  # success, normal disconnection, granted QoS 0
NO_MATCHING_SUBSCRIBERS = 0x10  # PUBACK: accepted, but nobody will get it
REFUSED = 0x80  # reason codes from here on are failures
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
NOT_AUTHORIZED = 0x87  # a publish or subscription the broker's ACL refuses
SESSION_TAKEN_OVER = 0x8E  # DISCONNECT: another client connected with this client id
TOPIC_NAME_INVALID = 0x90
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95

# CONNACK reasons about who is connecting: bad user name or password, not authorized,
# banned, bad authentication method.
CREDENTIALS_REFUSED = frozenset({0x86, 0x87, 0x8A, 0x8C})
# Reasons that ask a client to come back later, not at once: server busy, quota
# exceeded, connection rate exceeded; also use another server, server moved.
BACK_OFF = frozenset({0x89, 0x97, 0x9F, 0x9C, 0x9D})

_REASONS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def reason_text(code: int) -> str:
    """``code`` in hex, with its name when it has one: how errors name a reason code."""
    name = _REASONS.get(code)
    return f"reason code {code:#04x} ({name})" if name else f"reason code {code:#04x}"


def check_refusal(code: int, action: str, why: str | None = None) -> None:
    """Raise if ``code``, the broker's answer to ``action``, is a refusal (0x80 and above).

    Args:
        code: The reason code of a PUBACK or SUBACK.
        action: What was refused, e.g. ``"the publish to 't/1'"``.
        why: The broker's Reason String, if it sent one.

    Raises:
        AccessDeniedError: Reason 0x87 (not authorized): the broker's ACL refused it.
        BrokerRefusedError: Any other refusal (quota exceeded, topic invalid, ...).
    """
    if code < REFUSED:
        return
    text = reason_text(code)
    detail = f": {why}" if why else ""
    if code == NOT_AUTHORIZED:
        raise AccessDeniedError(f"the broker denied {action}: {text}{detail}", code, text)
    raise BrokerRefusedError(f"the broker refused {action}: {text}{detail}", code, text)
