"""Task stores: where a sender keeps tasks, push endpoints and deliveries across restarts.

:class:`MemoryTaskStore` is the default; :class:`SqliteTaskStore` survives the process;
``mqttpush.store.postgres.PostgresTaskStore`` (the ``postgres`` extra) is shared by several
processes. :func:`store_from_settings` makes the one the settings name.
"""

from mqttpush.store.base import (
    Delivery,
    DeliveryState,
    Lease,
    StoredTask,
    TakenOver,
    TaskStore,
)
from mqttpush.store.factory import store_from_settings, store_from_url
from mqttpush.store.memory import MemoryTaskStore
from mqttpush.store.sqlite import SqliteTaskStore

__all__ = [
    "Delivery",
    "DeliveryState",
    "Lease",
    "MemoryTaskStore",
    "SqliteTaskStore",
    "StoredTask",
    "TakenOver",
    "TaskStore",
    "store_from_settings",
    "store_from_url",
]
