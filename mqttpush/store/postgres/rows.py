"""Between the store's rows and PostgreSQL: parameters out, dataclasses back, errors translated.

JSON values go out as ``json`` (their text kept as written, key order included) through
``pydantic_core.to_json``, the encoder the rest of mqttpush uses; they come back decoded
by psycopg. Datetimes are ``timestamptz`` and come back in UTC.
"""

from __future__ import annotations

import contextlib
from datetime import UTC
from typing import TYPE_CHECKING, Any

import psycopg
import pydantic_core
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Json
from psycopg_pool import PoolTimeout

from mqttpush.errors import ConfigurationError, StoreError, StoreUnavailableError
from mqttpush.models import ErrorInfo, TaskState
from mqttpush.store.base import Delivery, DeliveryState, Lease, StoredTask

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from psycopg import AsyncConnection

__all__ = ["TERMINAL", "configure", "delivery_from_row", "delivery_params", "describe",
           "lease_from", "task_from_row", "task_params", "translate"]  # fmt: skip

#: The terminal states, as the ``%(terminal)s`` parameter.
TERMINAL = [state.value for state in TaskState if state.is_terminal]


def describe(url: str) -> str:
    """The database as messages name it: host, port and database, never the password.

    Raises:
        ConfigurationError: ``url`` is not a PostgreSQL connection string.
    """
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"store URL is not a PostgreSQL connection string: {exc}"
        ) from None
    host, port, dbname = (parts.get(key) for key in ("host", "port", "dbname"))
    return f"postgresql://{host or 'localhost'}:{port or 5432}/{dbname or ''}"


@contextlib.contextmanager
def translate(where: str) -> Iterator[None]:
    """Raise psycopg's errors, and rows that do not decode, as StoreError (the one place).

    Raises:
        StoreUnavailableError: The server is down or unreachable, the connection broke, or
            no pooled connection came in time.
        StoreError: Any other database error, or a row that does not decode.
    """
    try:
        yield
    except PoolTimeout as exc:
        raise StoreUnavailableError(f"task store {where}: no connection in time: {exc}") from exc
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(f"task store {where}: {exc}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"task store {where}: {exc}") from exc
    except ValueError as exc:  # a row that does not decode (pydantic's errors included)
        raise StoreError(f"task store {where}: damaged row: {exc}") from exc


async def configure(conn: AsyncConnection[Any]) -> None:
    """Prepare a pooled connection: times come back in UTC whatever the server's TimeZone."""
    await conn.execute("SET TIME ZONE 'UTC'")


def lease_from(task_id: str, owner: str, found: Sequence[Mapping[str, Any]]) -> Lease | None:
    """The lease a ``RETURNING lease_expires`` statement gave, if it changed a row."""
    if not found:
        return None
    return Lease(task_id, owner, found[0]["lease_expires"].astimezone(UTC))


def _json(value: Any) -> Json:  # noqa: ANN401 - any JSON value
    return Json(value, dumps=pydantic_core.to_json)


def task_params(task: StoredTask) -> dict[str, Any]:
    """The named parameters of a task row."""
    return {
        "task_id": task.task_id,
        "state": task.state.value,
        "params": _json(task.params),
        "result": _json(task.result),
        "error": None if task.error is None else _json(task.error.model_dump(mode="json")),
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "pushed": task.pushed,
    }


def task_from_row(row: Mapping[str, Any]) -> StoredTask:
    """A task from its row."""
    return StoredTask(
        task_id=row["task_id"],
        state=TaskState(row["state"]),
        params=row["params"],
        result=row["result"],
        error=None if row["error"] is None else ErrorInfo.model_validate(row["error"]),
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
        pushed=row["pushed"],
    )


def delivery_params(delivery: Delivery) -> dict[str, Any]:
    """The named parameters of a delivery row."""
    return {
        "notification_id": delivery.notification_id,
        "endpoint": delivery.endpoint,
        "task_id": delivery.task_id,
        "seq": delivery.seq,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "detail": delivery.detail,
        "updated_at": delivery.updated_at,
    }


def delivery_from_row(row: Mapping[str, Any]) -> Delivery:
    """A delivery from its row."""
    return Delivery(
        notification_id=row["notification_id"],
        task_id=row["task_id"],
        seq=row["seq"],
        endpoint=row["endpoint"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        detail=row["detail"],
        updated_at=row["updated_at"].astimezone(UTC),
    )
