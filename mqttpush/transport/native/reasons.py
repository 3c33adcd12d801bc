"""MQTT 5 reason codes: the few the transport acts on, and names for the rest in errors."""

from __future__ import annotations

__all__ = [
    "NOT_AUTHORIZED",
    "NO_MATCHING_SUBSCRIBERS",
    "REFUSED",
    "SESSION_TAKEN_OVER",
    "reason_text",
]

SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code 142
NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason code 16
REFUSED = 0x80  # reason codes from here on are failures
NOT_AUTHORIZED = 0x87  # a publish or subscription the broker's ACL refuses

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
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA2: "wildcard subscriptions not supported",
}


def reason_text(code: int) -> str:
    """``code`` in hex, with its name when it has one: how errors name a reason code."""
    name = _REASONS.get(code)
    return f"reason code {code:#04x} ({name})" if name else f"reason code {code:#04x}"
