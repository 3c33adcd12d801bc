"""Payload schemas for the AsyncAPI document, generated from the wire models.

Every schema comes from pydantic (the models in :mod:`mqttpush.models` and the
signatures of the task operations), so the document changes when the code does.
Nested definitions are hoisted into ``components/schemas`` and referenced there.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from mqttpush import codec
from mqttpush.agent.background import BackgroundTaskAgent
from mqttpush.card import AgentCard
from mqttpush.models import (
    DeliveryInfo,
    JsonRpcError,
    JsonRpcRequest,
    JsonRpcResponse,
    PushNotification,
    Receipt,
    TaskPushNotificationConfig,
    TaskStatus,
)

__all__ = ["Schemas", "operation_names"]

_REF = "#/components/schemas/{model}"
_MODELS: tuple[type[BaseModel], ...] = (
    JsonRpcRequest, JsonRpcResponse, JsonRpcError, PushNotification, Receipt, TaskStatus,
    TaskPushNotificationConfig, DeliveryInfo, AgentCard,
)  # fmt: skip


def operation_names() -> list[str]:
    """The operations every BackgroundTaskAgent serves, sorted."""
    return sorted(BackgroundTaskAgent.operations())


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class Schemas:
    """The ``components/schemas`` section, filled as schemas are asked for."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}
        for model in _MODELS:
            self.add(model.__name__, TypeAdapter(model))
        self.add("Receipts", TypeAdapter(list[Receipt]))
        self.components["CloudEvent"] = self._cloudevent()
        for name, op in sorted(BackgroundTaskAgent.operations().items()):
            params = op.params_model.model_json_schema(ref_template=_REF)
            params.pop("title", None)
            self._hoist(params)
            params["description"] = op.description
            self.components[f"{_pascal(name)}Params"] = params
            self.add(f"{_pascal(name)}Result", op.result_adapter)

    def add(self, name: str, adapter: TypeAdapter[Any]) -> dict[str, str]:
        """Add the schema of ``adapter`` under ``name``; return a reference to it."""
        schema = adapter.json_schema(ref_template=_REF, mode="serialization")
        self._hoist(schema)
        title = str(schema.get("title", name))
        if title != name and self.components.get(title) == schema:  # a model known already
            schema = self.ref(str(title))
        self.components.setdefault(name, schema)
        return self.ref(name)

    def _hoist(self, schema: dict[str, Any]) -> None:
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)

    @staticmethod
    def ref(name: str) -> dict[str, str]:
        """A reference to a component schema."""
        return {"$ref": _REF.format(model=name)}

    def _cloudevent(self) -> dict[str, Any]:
        """A notification as a CloudEvents 1.0 event, structured JSON mode (``cloudevents``)."""
        string = {"type": "string"}
        return {
            "type": "object",
            "description": "CloudEvents 1.0, structured JSON mode: the notification is ``data``.",
            "required": ["specversion", "type", "source", "id", "time", "subject",
                         "datacontenttype", "data"],
            "properties": {
                "specversion": {"const": "1.0"},
                "type": {"const": codec.CLOUDEVENTS_TYPE},
                "source": {**string, "description": "'mqttpush:' and the sender's address."},
                "id": {**string, "description": "The notification's id."},
                "time": {**string, "format": "date-time"},
                "subject": {**string, "description": "The task id."},
                "datacontenttype": {"const": codec.CONTENT_TYPE},
                "data": self.ref("PushNotification"),
            },
        }  # fmt: skip

    def request(self, method: str) -> dict[str, Any]:
        """The payload of a JSON-RPC request calling ``method``."""
        return {
            "type": "object",
            "required": ["jsonrpc", "method"],
            "additionalProperties": False,
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "id": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                "method": {"const": method},
                "params": self.ref(f"{_pascal(method)}Params"),
            },
        }

    def response(self, method: str) -> dict[str, Any]:
        """The payload of the reply to ``method``: its result, or a JSON-RPC error."""
        return {
            "type": "object",
            "required": ["jsonrpc", "id"],
            "additionalProperties": False,
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "id": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                "result": self.ref(f"{_pascal(method)}Result"),
                "error": self.ref("JsonRpcError"),
            },
        }
