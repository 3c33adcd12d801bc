"""Settings: profile files, environment overrides, and errors that name the setting."""

from __future__ import annotations

import logging

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


def test_profiles_load_from_config_files(monkeypatch):
    open_ = Settings.load("open", CONFIG_DIR)
    assert (open_.broker.host, open_.broker.port, open_.broker.uses_tls) == (
        "127.0.0.1",
        1883,
        False,
    )
    assert open_.agent.require_push_token is False
    # The secure profile names its CA file; each process adds its identity's variables.
    monkeypatch.setenv("MQTTPUSH_BROKER__CA_FILE", __file__)
    secure = Settings.load("secure", CONFIG_DIR)
    assert (secure.broker.port, secure.broker.uses_tls) == (8883, True)
    assert secure.agent.require_push_token is True
    assert secure.demo.sender_address == "sender@fame.fabric"
    assert secure.demo.notification_count == 9


def test_the_secure_profile_without_its_material_names_the_missing_file(monkeypatch, tmp_path):
    # The profile names .run/secure/ca.crt relative to the working directory: run where
    # it cannot exist, whatever the checkout holds (make certs creates it there).
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"broker\.ca_file"):
        Settings.load("secure", CONFIG_DIR)


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_PROFILE", "secure")
    monkeypatch.setenv("MQTTPUSH_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.setenv("MQTTPUSH_BROKER__CA_FILE", __file__)
    assert Settings.load().broker.port == 8883


def test_environment_overrides_the_profile_file(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_BROKER__HOST", "mosquitto")  # as compose sets it
    monkeypatch.setenv("MQTTPUSH_DEMO__NOTIFICATION_INTERVAL", "0")
    settings = Settings.load("open", CONFIG_DIR)
    assert settings.broker.host == "mosquitto"
    assert settings.broker.port == 1883  # the rest of the section still from the file
    assert settings.demo.notification_interval == 0


def test_a_password_file_gives_the_password(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = Settings.load(None, broker={"password_file": str(secret)})
    assert settings.broker.secret() == "s3cret"
    assert Settings.load(None).broker.secret() is None


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
        Settings.load("open", CONFIG_DIR)


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


def test_unknown_mqttpush_variables_are_named_with_a_suggestion(monkeypatch, caplog):
    monkeypatch.setenv("MQTTPUSH_BORKER__PORT", "1884")  # a misspelled section
    monkeypatch.setenv("MQTTPUSH_TOPIC_PREFX", "acme/v2")  # a misspelled top-level name
    monkeypatch.setenv("MQTTPUSH_WHATEVER", "1")
    monkeypatch.setenv("MQTTPUSH_TEST_BROKER", "local")  # the test suite's own switch
    monkeypatch.setenv("MQTTPUSH_RPC__TIMEOUT", "3")
    with caplog.at_level(logging.WARNING, logger="mqttpush.settings"):
        settings = Settings.load("open", CONFIG_DIR)
    assert settings.broker.port == 1883  # ignored, as before, but no longer silently
    assert settings.rpc.timeout == 3
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring MQTTPUSH_BORKER__PORT: mqttpush has no setting 'borker'; "
        "did you mean MQTTPUSH_BROKER__PORT?",
        "ignoring MQTTPUSH_TOPIC_PREFX: mqttpush has no setting 'topic_prefx'; "
        "did you mean MQTTPUSH_TOPIC_PREFIX?",
        "ignoring MQTTPUSH_WHATEVER: mqttpush has no setting 'whatever'",
    ]


def test_a_misspelled_nested_variable_is_still_refused(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_BROKER__PORTT", "1884")
    with pytest.raises(ConfigurationError, match=r"broker\.portt"):
        Settings.load("open", CONFIG_DIR)
