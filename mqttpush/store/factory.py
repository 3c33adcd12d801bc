"""The store a process uses, chosen from its settings or a URL.

``agent.store_url`` picks it by scheme: ``postgresql://`` (or ``postgres://``) for the
PostgreSQL store, ``sqlite:///PATH`` for a SQLite file (SQLAlchemy's spelling: three
slashes then a relative path, four for an absolute one). Without a URL,
``agent.store_path`` names a SQLite file, and without that the store is in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError
from mqttpush.store.memory import MemoryTaskStore
from mqttpush.store.sqlite import SqliteTaskStore

if TYPE_CHECKING:
    from mqttpush.settings import AgentSettings
    from mqttpush.store.base import TaskStore

__all__ = ["sqlite_path", "store_from_settings", "store_from_url"]


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:`` URL names.

    Raises:
        ConfigurationError: The URL names no file.
    """
    rest = url.partition(":")[2]
    path = rest.removeprefix("//").removeprefix("/") if rest.startswith("//") else rest
    if not path:
        raise ConfigurationError(f"store URL {url!r} names no file: sqlite:///PATH")
    return Path(path)


def store_from_url(
    url: str,
    *,
    pool_size: int = 10,
    timeout: float = 5.0,
    migrate: bool = False,
    lease_timeout: float | None = None,
) -> TaskStore:
    """Make the store a URL names; nothing is opened until it is used.

    Args:
        url: ``postgresql://...``, ``postgres://...`` or ``sqlite:///PATH``.
        pool_size: PostgreSQL connections this process opens at most.
        timeout: Seconds a PostgreSQL operation waits for a connection.
        migrate: Apply pending PostgreSQL migrations when opening (SQLite files are
            always brought up to date).
        lease_timeout: Seconds a PostgreSQL lease renewal may take on its own
            connection (default: ``timeout``).

    Raises:
        ConfigurationError: An unknown scheme, or PostgreSQL without the ``postgres`` extra.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return SqliteTaskStore(sqlite_path(url))
    if scheme not in {"postgresql", "postgres"}:
        raise ConfigurationError(
            f"store URL scheme {scheme!r} is not one of postgresql, postgres, sqlite"
        )
    try:
        from mqttpush.store.postgres import PostgresTaskStore  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise ConfigurationError(
            f"the PostgreSQL store needs its driver: pip install 'mqttpush[postgres]' ({exc})"
        ) from None
    return PostgresTaskStore(
        url, pool_size=pool_size, timeout=timeout, migrate=migrate, lease_timeout=lease_timeout
    )


def store_from_settings(agent: AgentSettings, *, migrate: bool = False) -> TaskStore:
    """Make the store the ``agent`` settings name: store_url, else store_path, else memory.

    Raises:
        ConfigurationError: See :func:`store_from_url`.
    """
    if agent.store_url is not None:
        return store_from_url(
            agent.store_url.get_secret_value(),
            pool_size=agent.store_pool_size,
            timeout=agent.store_timeout,
            migrate=migrate,
            lease_timeout=agent.store_lease_timeout,
        )
    if agent.store_path is None:
        return MemoryTaskStore(agent.max_finished_tasks, agent.max_finished_bytes)
    return SqliteTaskStore(agent.store_path)
