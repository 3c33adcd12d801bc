"""The AsyncAPI 3.0 document of the wire protocol (docs/protocol.md), built from the code.

Channels are the topics of docs/protocol.md under the default prefix; messages carry
their MQTT 5 properties as MQTT bindings (QoS, retain, Content Type, Response Topic,
Correlation Data, Message Expiry) and their user properties as headers.
"""

from __future__ import annotations

from typing import Any

from mqttpush import codec
from mqttpush.address import DEFAULT_PREFIX
from mqttpush.card import CARD_STATUS, CARD_STATUS_SOURCE
from mqttpush.tools.asyncapi.schemas import Schemas, operation_names

__all__ = ["build_document"]

_BINDING = "0.2.0"
_QOS1 = {"mqtt": {"qos": 1, "retain": False, "bindingVersion": _BINDING}}
_RETAINED = {"mqtt": {"qos": 1, "retain": True, "bindingVersion": _BINDING}}
_SHARED = "x-mqttpush-shared-subscription"  # how a pool of copies subscribes (no binding field)
_LEVEL = "one topic level (no '/', '+', '#', not starting with '$')"


def _headers(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The envelope user properties (docs/protocol.md), plus the W3C trace context."""
    described = {
        codec.SENDER: "Address of the agent (or client id of the caller) that sent it.",
        codec.OPERATION: "The method on requests and replies; 'push' or 'ack'.",
        codec.CORRELATION_ID: "The correlation id of a request (and its reply).",
        codec.TRACE_ID: "A trace id that follows a whole flow across agents.",
        codec.TOKEN: "The token the endpoint registered (notifications only).",
        codec.PRIORITY: "The notification's priority, as in its payload (notifications only).",
        "traceparent": "W3C trace context (with OpenTelemetry tracing on).",
        "tracestate": "W3C trace state (with OpenTelemetry tracing on).",
    }
    properties: dict[str, Any] = {
        name: {"type": "string", "maxLength": 1024, "description": text}
        for name, text in described.items()
    }
    return {
        "type": "object",
        "description": "MQTT 5 user properties; all optional, the first value of a name counts.",
        "properties": {**properties, **(extra or {})},
    }


def _message(
    name: str,
    payload: dict[str, Any],
    summary: str,
    *,
    request: bool = False,
    reply: bool = False,
    content_type: str = codec.CONTENT_TYPE,
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    binding: dict[str, Any] = {"contentType": content_type, "bindingVersion": _BINDING}
    if request:
        binding["responseTopic"] = {"type": "string", "description": "Where the reply goes."}
    if request or reply:
        binding["correlationData"] = {"type": "string", "description": "Copied into the reply."}
    message: dict[str, Any] = {
        "name": name,
        "contentType": content_type,
        "summary": summary,
        "headers": _headers(headers),
        "payload": payload,
        "bindings": {"mqtt": binding},
    }
    return message


def _parameters(*names: str) -> dict[str, Any]:
    return {name: {"description": f"{name}: {_LEVEL}"} for name in names}


def build_document(version: str) -> dict[str, Any]:
    """The whole document, as plain data (YAML or JSON alike)."""
    schemas = Schemas()
    methods = operation_names()
    messages: dict[str, Any] = {}
    for method in methods:
        messages[f"{method}Request"] = _message(
            f"{method} request", schemas.request(method), f"Call {method}.", request=True
        )
        messages[f"{method}Response"] = _message(
            f"{method} response", schemas.response(method), f"The reply to {method}.", reply=True
        )
    messages["notification"] = _message(
        "notification", schemas.ref("PushNotification"), "One push notification of a task."
    )
    messages["cloudEventNotification"] = _message(
        "CloudEvents notification",
        schemas.ref("CloudEvent"),
        "The same notification for an endpoint registered with format 'cloudevents': a "
        "CloudEvents 1.0 event in structured JSON mode whose data is the notification.",
        content_type=codec.CLOUDEVENTS_CONTENT_TYPE,
    )
    messages["card"] = _message(
        "card",
        schemas.ref("AgentCard"),
        "An agent's presence card: retained, replaced by the offline card when it stops "
        "(published by the agent) or when its connection is lost (its Will, by the broker).",
        headers={
            CARD_STATUS: {"type": "string", "enum": ["online", "offline"],
                          "description": "The card's status, as in its payload."},
            CARD_STATUS_SOURCE: {"type": "string", "enum": ["agent", "will"],
                                 "description": "'will' when the broker published the Will."},
        },
    )  # fmt: skip
    messages["receipts"] = _message(
        "receipts",
        {"oneOf": [schemas.ref("Receipt"), schemas.ref("Receipts")]},
        "Receipts for handled notifications: one object, or an array of up to 500.",
    )

    def refs(*names: str) -> dict[str, Any]:
        return {n: {"$ref": f"#/components/messages/{n}"} for n in names}

    prefix = DEFAULT_PREFIX
    channels = {
        "rpc": {
            "address": f"{prefix}/{{domain}}/{{name}}/rpc",
            "description": "Requests to the agent name@domain (JSON-RPC 2.0). A pool of "
            "copies subscribes as $share/{pool}/...: each request goes to one copy.",
            "parameters": _parameters("domain", "name"),
            "messages": refs(*(f"{m}Request" for m in methods)),
        },
        "rpcCopy": {
            "address": f"{prefix}/{{domain}}/{{name}}/rpc/{{clientId}}",
            "description": "Requests for one copy (MQTT client id clientId) of a pooled agent, "
            "unshared: a copy forwards cancel_task here to the copy owning the task.",
            "parameters": _parameters("domain", "name", "clientId"),
            "messages": refs(*(f"{m}Request" for m in methods)),
        },
        "reply": {
            "address": f"{prefix}/_reply/{{clientId}}/{{correlationId}}",
            "description": "Replies to an mqttpush caller: the Response Topic it sends. Callers "
            "with a user name use _reply/{username}/{clientId}/{correlationId}; an agent "
            "replies to whatever Response Topic a request names.",
            "parameters": _parameters("clientId", "correlationId"),
            "messages": refs(*(f"{m}Response" for m in methods)),
        },
        "push": {
            "address": f"{prefix}/{{domain}}/{{name}}/push/{{taskId}}",
            "description": "Notifications for the endpoint name@domain about task taskId, "
            "as mqttpush JSON or (endpoint format 'cloudevents') a CloudEvents event. A pool "
            "of copies subscribes as $share/{pool}/...: each notification goes to one copy.",
            "parameters": _parameters("domain", "name", "taskId"),
            "messages": refs("notification", "cloudEventNotification"),
        },
        "ack": {
            "address": f"{prefix}/{{domain}}/{{name}}/ack",
            "description": "Receipts for the notifications that the agent name@domain sent.",
            "parameters": _parameters("domain", "name"),
            "messages": refs("receipts"),
        },
        "card": {
            "address": f"{prefix}/{{domain}}/{{name}}/card",
            "description": "The presence card of the agent name@domain, retained; subscribe "
            f"to {prefix}/+/+/card for every agent's. Each served agent sets the offline card "
            "as the Will of its presence connection (QoS 1, retained).",
            "parameters": _parameters("domain", "name"),
            "messages": refs("card"),
        },
    }

    def operation(action: str, channel: str, summary: str, **extra: Any) -> dict[str, Any]:  # noqa: ANN401
        names = list(channels[channel]["messages"])
        return {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names],
            "bindings": _RETAINED if channel == "card" else _QOS1,
            **extra,
        }

    operations = {
        "callAgent": operation(
            "send",
            "rpc",
            "Call an operation of an agent; the reply comes on the Response Topic.",
            reply={
                "channel": {"$ref": "#/channels/reply"},
                "messages": [{"$ref": f"#/channels/reply/messages/{m}Response"} for m in methods],
            },
        ),
        "serveRequests": operation(
            "receive", "rpc", "An agent takes its requests.", **{_SHARED: "$share/{pool}/"}
        ),
        "forwardToCopy": operation(
            "send",
            "rpcCopy",
            "A copy of a pooled agent forwards a request to the copy that owns the task.",
            reply={
                "channel": {"$ref": "#/channels/reply"},
                "messages": [{"$ref": f"#/channels/reply/messages/{m}Response"} for m in methods],
            },
        ),
        "serveCopyRequests": operation(
            "receive", "rpcCopy", "A copy of a pooled agent takes the requests for it alone."
        ),
        "receiveReplies": operation("receive", "reply", "A caller takes its replies."),
        "sendNotification": operation("send", "push", "The agent running a task notifies."),
        "receiveNotification": operation(
            "receive",
            "push",
            "An endpoint takes notifications (PUBACK after handling).",
            **{_SHARED: "$share/{pool}/"},
        ),
        "sendReceipts": operation("send", "ack", "An endpoint confirms what it handled."),
        "receiveReceipts": operation("receive", "ack", "The sender marks deliveries delivered."),
        "publishCard": operation(
            "send", "card", "A served agent publishes its card: online, then offline at a stop."
        ),
        "readCards": operation("receive", "card", "Anyone reads the retained cards."),
    }
    server_binding = {"mqtt": {"sessionExpiryInterval": 3600, "keepAlive": 30,
                               "cleanSession": False, "bindingVersion": _BINDING}}  # fmt: skip
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "mqttpush wire protocol",
            "version": version,
            "description": "Agent-to-agent push notifications and JSON-RPC 2.0 over MQTT 5. "
            "Generated from the code by `mqttpush asyncapi`; the prose is docs/protocol.md. "
            f"Topics are shown under the default prefix {prefix} (MQTTPUSH_TOPIC_PREFIX). "
            "Every message is published with QoS 1 and never retained, except the presence "
            "cards (retained).",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": codec.CONTENT_TYPE,
        "servers": {
            "open": {
                "host": "127.0.0.1:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The open profile (anonymous, 127.0.0.1 only).",
                "bindings": server_binding,
            },
            "secure": {
                "host": "127.0.0.1:8883",
                "protocol": "secure-mqtt",
                "protocolVersion": "5",
                "description": "The secure profile: TLS 1.2+, client certificates, passwords, "
                "an ACL per identity (docs/security.md).",
                "bindings": server_binding,
            },
            "websockets": {
                "host": "127.0.0.1:9001",
                "protocol": "ws",
                "protocolVersion": "5",
                "description": "MQTT over WebSockets, for browsers (the console).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas.components},
    }
