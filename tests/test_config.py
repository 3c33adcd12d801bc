"""Settings: profile files, environment overrides, and errors that name the setting."""

from __future__ import annotations

import pytest

from mqttpush import ConfigurationError, Settings
from mqttpush.transport.mqtt import MqttTransport
from tests.conftest import REPO

CONFIG_DIR = REPO / "config"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("MQTTPUSH_"):
            monkeypatch.delenv(name)


def test_profiles_load_from_config_files():
    local = Settings.load("local", CONFIG_DIR)
    assert (local.broker.host, local.broker.port) == ("127.0.0.1", 1883)
    docker = Settings.load("docker", CONFIG_DIR)
    assert docker.broker.host == "mosquitto"
    assert docker.demo.sender_address == "sender@fame.fabric"
    assert docker.demo.notification_count == 9


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_PROFILE", "docker")
    monkeypatch.setenv("MQTTPUSH_CONFIG_DIR", str(CONFIG_DIR))
    assert Settings.load().broker.host == "mosquitto"


def test_environment_overrides_the_profile_file(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_BROKER__PORT", "1999")
    monkeypatch.setenv("MQTTPUSH_DEMO__NOTIFICATION_INTERVAL", "0")
    settings = Settings.load("docker", CONFIG_DIR)
    assert settings.broker.port == 1999
    assert settings.broker.host == "mosquitto"  # the rest of the section still from the file
    assert settings.demo.notification_interval == 0


def test_without_a_profile_only_environment_and_defaults_count(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_TOPIC_PREFIX", "acme/v2")
    settings = Settings.load()
    assert settings.topic_prefix == "acme/v2"
    assert settings.broker.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("MQTTPUSH_BROKER__PORT", "70000", "broker.port"),
        ("MQTTPUSH_DEMO__NOTIFICATION_COUNT", "-1", "demo.notification_count"),
        ("MQTTPUSH_DEMO__SENDER_ADDRESS", "no-domain", "demo.sender_address"),
        ("MQTTPUSH_TOPIC_PREFIX", "a/#", "topic_prefix"),
        ("MQTTPUSH_RPC__TIMEOUT", "soon", "rpc.timeout"),
        ("MQTTPUSH_BROKER__CA_FILE", "/nonexistent/ca.pem", "broker.ca_file"),
        ("MQTTPUSH_BROKER__KEY_FILE", __file__, "broker"),
    ],
)
def test_invalid_values_name_the_setting(monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        Settings.load("local", CONFIG_DIR)


def test_bad_profile_files_are_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="no file"):
        Settings.load("staging", tmp_path)
    (tmp_path / "typo.toml").write_text("[broker]\nhots = 'x'\n")
    with pytest.raises(ConfigurationError, match=r"broker\.hots"):
        Settings.load("typo", tmp_path)
    with pytest.raises(ConfigurationError):
        Settings.load("../etc", tmp_path)


async def test_tls_settings_and_unloadable_tls_files(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate")
    settings = Settings.load(None, broker={"ca_file": ca})
    assert settings.broker.uses_tls
    assert not Settings.load().broker.uses_tls
    with pytest.raises(ConfigurationError, match="cannot be loaded"):
        await MqttTransport(settings.broker).connect()
