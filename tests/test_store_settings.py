"""Choosing the task store from settings, and ``mqttpush store`` on a real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from mqttpush.errors import ConfigurationError
from mqttpush.settings import AgentSettings, Settings
from mqttpush.store import MemoryTaskStore, SqliteTaskStore, store_from_settings, store_from_url
from mqttpush.store.factory import sqlite_path
from mqttpush.store.postgres import PostgresTaskStore
from mqttpush.tools.cli import EXIT_USAGE, main


def test_without_a_url_the_store_is_sqlite_at_store_path_or_memory(tmp_path):
    assert isinstance(store_from_settings(AgentSettings()), MemoryTaskStore)
    store = store_from_settings(AgentSettings(store_path=tmp_path / "s.db"))
    assert isinstance(store, SqliteTaskStore)
    assert store.path == tmp_path / "s.db"


def test_the_url_from_the_environment_picks_postgresql(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_AGENT__STORE_URL", "postgresql://app:pw@db.example:6543/tasks")
    monkeypatch.setenv("MQTTPUSH_AGENT__STORE_POOL_SIZE", "4")
    settings = Settings.load()
    store = store_from_settings(settings.agent)
    assert isinstance(store, PostgresTaskStore)  # made, not connected
    assert store.where == "postgresql://db.example:6543/tasks"
    shown = json.dumps(settings.model_dump(mode="json"))
    assert "pw" not in shown  # the URL may hold a password: shown masked
    assert settings.agent.store_pool_size == 4


def test_sqlite_urls_are_spelled_as_sqlalchemy_does(tmp_path):
    assert sqlite_path("sqlite:///run/tasks.db").as_posix() == "run/tasks.db"
    assert sqlite_path("sqlite:////var/lib/tasks.db").as_posix() == "/var/lib/tasks.db"
    with pytest.raises(ConfigurationError, match="names no file"):
        sqlite_path("sqlite://")
    store = store_from_url(f"sqlite:///{tmp_path}/s.db")
    assert isinstance(store, SqliteTaskStore)
    assert store.path == tmp_path / "s.db"


def test_invalid_store_settings_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("MQTTPUSH_AGENT__STORE_URL", "mysql://db/tasks")
    with pytest.raises(ConfigurationError, match=r"agent\.store_url"):
        Settings.load()
    monkeypatch.setenv("MQTTPUSH_AGENT__STORE_URL", "postgresql://db/tasks")
    monkeypatch.setenv("MQTTPUSH_AGENT__STORE_PATH", str(tmp_path / "s.db"))
    with pytest.raises(ConfigurationError, match="choose one"):
        Settings.load()
    with pytest.raises(ConfigurationError, match="scheme 'redis'"):
        store_from_url("redis://db")


def test_store_migrate_and_status_on_the_command_line(postgres_url, capsys, monkeypatch):
    assert main(["store", "status", "--url", postgres_url]) == 0
    assert "schema version 0, this mqttpush's is 4" in capsys.readouterr().out
    assert main(["store", "migrate", "--url", postgres_url]) == 0
    assert (
        "0001_tasks, 0002_leases, 0003_endpoint_options, 0004_replies; schema version 4"
        in capsys.readouterr().out
    )
    monkeypatch.setenv("MQTTPUSH_AGENT__STORE_URL", postgres_url)  # the default URL
    assert main(["store", "migrate"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_store_migrate_needs_a_url(capsys, monkeypatch):
    monkeypatch.delenv("MQTTPUSH_AGENT__STORE_URL", raising=False)
    assert main(["store", "migrate"]) == EXIT_USAGE
    assert "no store URL" in capsys.readouterr().err


def test_store_migrate_brings_a_sqlite_file_up_to_date(tmp_path, capsys):
    assert main(["store", "migrate", "--url", f"sqlite:///{tmp_path}/s.db"]) == 0
    assert "schema up to date" in capsys.readouterr().out
    assert (tmp_path / "s.db").exists()
