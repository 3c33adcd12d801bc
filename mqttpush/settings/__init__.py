"""Settings, in small sections: a profile file, overridden by ``MQTTPUSH_*`` variables.

Nested fields use a double underscore: ``MQTTPUSH_BROKER__PORT=1884``,
``MQTTPUSH_DEMO__NOTIFICATION_INTERVAL=0``. :meth:`Settings.load` also reads the
profile ``{MQTTPUSH_CONFIG_DIR}/{MQTTPUSH_PROFILE}.toml`` (``config/open.toml``,
``config/secure.toml``); environment variables win over the file, the file over the
defaults. Invalid values raise :class:`~mqttpush.errors.ConfigurationError`, which
names each setting.
"""

from __future__ import annotations

import difflib
import logging
import os
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import (
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mqttpush.address import DEFAULT_PREFIX, check_level, check_prefix
from mqttpush.errors import ConfigurationError, InvalidAddressError

if TYPE_CHECKING:
    from collections.abc import Mapping

from mqttpush.settings.broker import BrokerSettings
from mqttpush.settings.sections import (
    AgentSettings,
    DemoSettings,
    MetricsSettings,
    RpcSettings,
    TracingSettings,
)

_profile_file: ContextVar[Path | None] = ContextVar("mqttpush_profile_file", default=None)
log = logging.getLogger(__name__)

_PREFIX = "MQTTPUSH_"
# MQTTPUSH_* names that are not settings but are read elsewhere: the profile choice
# (Settings.load), and the test suite's own switches (tests/conftest.py).
_OTHER_VARIABLES = ("PROFILE", "CONFIG_DIR")
_OTHER_PREFIXES = ("TEST_",)

__all__ = [
    "AgentSettings",
    "BrokerSettings",
    "DemoSettings",
    "MetricsSettings",
    "RpcSettings",
    "Settings",
    "TracingSettings",
]


class Settings(BaseSettings):
    """All settings; each section can be overridden from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="MQTTPUSH_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    topic_prefix: str = DEFAULT_PREFIX
    broker: BrokerSettings = BrokerSettings()
    rpc: RpcSettings = RpcSettings()
    agent: AgentSettings = AgentSettings()
    demo: DemoSettings = DemoSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_valid(cls, value: str) -> str:
        return check_prefix(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order of precedence: arguments, then the environment, then the profile file."""
        path = _profile_file.get()
        if path is None:
            return init_settings, env_settings
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=path)

    @classmethod
    def load(
        cls,
        profile: str | None = None,
        config_dir: str | Path | None = None,
        **overrides: Any,  # noqa: ANN401 - any section or value a Settings field takes
    ) -> Self:
        """Read a profile file and the environment.

        Args:
            profile: The profile name; defaults to ``MQTTPUSH_PROFILE``. Without one,
                only the environment and the defaults count.
            config_dir: Where profiles live; defaults to ``MQTTPUSH_CONFIG_DIR``, then
                ``config``.
            **overrides: Values that win over everything else.

        Raises:
            ConfigurationError: The profile file is missing or a value is invalid;
                the message names every offending setting.
        """
        _warn_unknown_variables(os.environ, cls)
        profile = profile or os.environ.get("MQTTPUSH_PROFILE") or None
        path: Path | None = None
        if profile is not None:
            try:
                check_level(profile, "profile name")
            except InvalidAddressError as exc:
                raise ConfigurationError(str(exc)) from None
            directory = Path(config_dir or os.environ.get("MQTTPUSH_CONFIG_DIR") or "config")
            path = directory / f"{profile}.toml"
            if not path.is_file():
                raise ConfigurationError(f"profile {profile!r}: no file {path}")
        token = _profile_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            where = f"profile {path} or " if path else ""
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigurationError(
                f"invalid settings (from {where}MQTTPUSH_* variables): {problems}"
            ) from exc
        finally:
            _profile_file.reset(token)


def _unknown_variables(environ: Mapping[str, str], settings_cls: type[BaseSettings]) -> list[str]:
    """Return a sentence for each ``MQTTPUSH_*`` variable that names no setting.

    A misspelled nested name (``MQTTPUSH_BROKER__PORTT``) is refused when the settings
    load; a misspelled section or top-level name (``MQTTPUSH_BORKER__PORT``) would be
    ignored silently, so it is named here, with the closest known spelling.
    """
    fields = [name.upper() for name in settings_cls.model_fields]
    known = [*fields, *_OTHER_VARIABLES]
    found = []
    for name in sorted(environ):
        if not name.startswith(_PREFIX):
            continue
        rest = name.removeprefix(_PREFIX)
        head = rest.split("__", 1)[0]
        if head in fields or rest in _OTHER_VARIABLES or rest.startswith(_OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(head, known, n=1)
        hint = f"; did you mean {_PREFIX}{close[0]}{rest[len(head) :]}?" if close else ""
        found.append(f"ignoring {name}: mqttpush has no setting {head.lower()!r}{hint}")
    return found


def _warn_unknown_variables(environ: Mapping[str, str], settings_cls: type[BaseSettings]) -> None:
    for sentence in _unknown_variables(environ, settings_cls):
        log.warning("%s", sentence)
