"""What a task's notification may carry: its data checked against a schema, its priority."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from mqttpush import codec
from mqttpush.errors import InvalidNotificationError
from mqttpush.models import Priority

__all__ = ["checked_data", "checked_priority"]


def checked_data(
    schema: type[BaseModel] | None, data: dict[str, Any] | BaseModel | None
) -> dict[str, Any] | None:
    """``data`` as JSON, checked against the agent's ``schema`` when it declares one.

    Raises:
        InvalidNotificationError: ``data`` does not match ``schema``.
    """
    if data is None:
        return None
    if schema is None:
        if isinstance(data, BaseModel):
            return data.model_dump(mode="json")
        return data
    try:
        typed = (
            data
            if isinstance(data, schema)
            else schema.model_validate(data.model_dump() if isinstance(data, BaseModel) else data)
        )
    except ValidationError as exc:
        detail = codec.validation_detail(exc)
        raise InvalidNotificationError(
            f"notification data does not match {schema.__name__}: {detail}"
        ) from None
    return typed.model_dump(mode="json")


def checked_priority(priority: Priority | str) -> Priority:
    """``priority`` as a :class:`~mqttpush.models.Priority`.

    Raises:
        InvalidNotificationError: ``priority`` is unknown.
    """
    try:
        return Priority(priority)
    except ValueError:
        known = ", ".join(p.value for p in Priority)
        why = f"unknown priority {priority!r}; known: {known}"
        raise InvalidNotificationError(why) from None
