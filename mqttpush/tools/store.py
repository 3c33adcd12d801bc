"""``mqttpush store``: bring a task store's schema up to date, or show its version.

``mqttpush store migrate [--url URL]`` applies the PostgreSQL migrations the database
lacks (safe to run again, and from several processes at once); ``mqttpush store status``
prints the schema version. The URL defaults to the ``agent.store_url`` setting
(``MQTTPUSH_AGENT__STORE_URL``). A SQLite file is brought up to date whenever it is opened.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError
from mqttpush.store import SqliteTaskStore
from mqttpush.store.factory import sqlite_path

if TYPE_CHECKING:
    import argparse

    from mqttpush.settings import Settings

__all__ = ["add_store_parser", "store_command"]


def add_store_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``store`` command to the command line's subcommands."""
    store = sub.add_parser("store", help="the task store's schema: migrate, status")
    store.add_argument(
        "action", choices=["migrate", "status"], help="migrate: apply pending migrations"
    )
    store.add_argument(
        "--url", default=None, help="postgresql://... or sqlite:///PATH (default: agent.store_url)"
    )


def store_command(settings: Settings, action: str, url: str | None) -> None:
    """Run ``mqttpush store ACTION`` and print what was done.

    Raises:
        ConfigurationError: No URL, or one of an unknown kind.
        StoreError: The store could not be reached or migrated.
    """
    if url is None:
        secret = settings.agent.store_url
        if secret is None:
            raise ConfigurationError("no store URL: pass --url or set MQTTPUSH_AGENT__STORE_URL")
        url = secret.get_secret_value()
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        store = SqliteTaskStore(sqlite_path(url))  # opening it migrates it
        asyncio.run(store.close())
        print(f"{store.path}: SQLite task store, schema up to date")
        return
    if scheme not in {"postgresql", "postgres"}:
        raise ConfigurationError(f"store URL scheme {scheme!r}: expected postgresql or sqlite")
    from mqttpush.store import postgres  # noqa: PLC0415 - the optional extra, only here

    where = postgres.rows.describe(url)
    if action == "status":
        version = asyncio.run(postgres.schema_version(url))
        print(f"{where}: schema version {version}, this mqttpush's is {postgres.SCHEMA_VERSION}")
        return
    applied = asyncio.run(postgres.migrate(url))
    done = ", ".join(str(m) for m in applied) if applied else "nothing to do"
    print(f"{where}: {done}; schema version {postgres.SCHEMA_VERSION}")
