"""Test fixtures: a real Mosquitto for the whole session, and per-test settings.

The broker comes from testcontainers when a Docker engine answers, otherwise from a
``mosquitto`` process started from the OS package with the repository's
``mosquitto.conf``. ``MQTTPUSH_TEST_BROKER=docker|local`` forces one. There is no
skip: without a broker the tests fail and say how to install one.

``async def`` tests run on a fresh event loop each, under a hard timeout
(``@pytest.mark.timeout_s(N)``, default 60 s), so no test can hang CI.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mqttpush.fabric import Fabric
from mqttpush.settings import BrokerSettings, DemoSettings, Settings
from mqttpush.testing import MemoryBroker
from mqttpush.tools.devbroker import LocalMosquitto
from mqttpush.transport.mqtt import MqttTransport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mqttpush.transport import Transport

pytest_plugins = ["tests.postgres"]  # a private PostgreSQL: postgres, postgres_url

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "mosquitto.conf"
#: What ``mqttpush run`` prints for the seed scenario.
EXPECTED = """{
  "notifications": [
    "Notification #1",
    "Notification #2",
    "Notification #3",
    "Notification #4",
    "Notification #5",
    "Notification #6",
    "Notification #7",
    "Notification #8",
    "Notification #9"
  ]
}
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timeout_s(seconds): hard timeout of an async test")


# Integration modules whose tests start a broker, agents or containers themselves (the
# others are told apart by the ``broker`` fixture they use).
_INTEGRATION_MODULES = frozenset(
    {"test_broker_loss", "test_cluster", "test_compose", "test_local_mode",
     "test_native_transport", "test_security_material"}
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every integration test ``broker``; ``make test-fast`` runs the others.

    Tests that get their broker from the session fixture are also ``session_broker``:
    the tests whose broker testcontainers gives when ``MQTTPUSH_TEST_BROKER=docker``.
    """
    for item in items:
        module = (
            item.module.__name__.rpartition(".")[2] if isinstance(item, pytest.Function) else ""
        )
        uses_session_broker = "broker" in getattr(item, "fixturenames", ())
        if uses_session_broker:
            item.add_marker(pytest.mark.session_broker)
        if uses_session_broker or module in _INTEGRATION_MODULES:
            item.add_marker(pytest.mark.broker)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests with asyncio.run under a hard timeout."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    marker = pyfuncitem.get_closest_marker("timeout_s")
    limit = float(marker.args[0]) if marker else 60.0
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await func(**kwargs)

    asyncio.run(bounded())
    return True


@dataclass
class Broker:
    """Where the session's broker listens."""

    host: str
    port: int
    kind: str


def _docker_answers() -> bool:
    """Whether a Docker engine answers ``GET /_ping`` on its socket (TCP hosts: assume yes)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(256)
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    choice = os.environ.get("MQTTPUSH_TEST_BROKER", "auto")
    if choice == "docker" or (choice == "auto" and _docker_answers()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from testcontainers.community.mqtt import MosquittoContainer  # noqa: PLC0415

            container = MosquittoContainer(image="eclipse-mosquitto:2").start(
                configfile=str(CONFIG)
            )
        try:
            yield Broker(
                container.get_container_host_ip(),
                int(container.get_exposed_port(MosquittoContainer.MQTT_PORT)),
                "docker",
            )
        finally:
            container.stop()
        return
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail(
            "no MQTT broker for the tests: no Docker engine answers and mosquitto is not "
            "installed. Install it (Debian/Ubuntu: apt-get install mosquitto mosquitto-clients) "
            "or start Docker."
        )
    with LocalMosquitto(CONFIG) as local:
        yield Broker(local.host, local.port, "local")


def make_settings(host: str, port: int, **demo: Any) -> Settings:
    """Settings for one test: its own topic prefix, so tests never see each other's traffic."""
    return Settings(
        topic_prefix=f"test/{uuid.uuid4().hex[:12]}",
        broker=BrokerSettings(
            host=host,
            port=port,
            reconnect_min_delay=0.05,
            reconnect_max_delay=0.5,
            client=os.environ.get("MQTTPUSH_TEST_CLIENT", "native"),
        ),
        demo=DemoSettings(**demo),
    )


@pytest.fixture
def settings(broker: Broker) -> Settings:
    return make_settings(broker.host, broker.port, notification_interval=0.0)


@dataclass
class Kit:
    """Factories for fabrics and raw transports on one broker; unpacks as the two factories."""

    settings: Settings
    fabric: Callable[[], Fabric]
    transport: Callable[[], Transport]
    fabric_for: Callable[[Settings], Fabric]  # a fabric on the same broker, other settings

    def __iter__(self) -> Iterator[Callable[[], Any]]:
        return iter((self.fabric, self.transport))


@pytest.fixture(
    params=[
        "memory",
        pytest.param("mosquitto", marks=[pytest.mark.broker, pytest.mark.session_broker]),
    ]
)
def kit(request: pytest.FixtureRequest) -> Kit:
    """The same contract on the in-memory broker (no broker needed) and on Mosquitto."""
    if request.param == "memory":
        settings = make_settings("127.0.0.1", 1883, notification_interval=0.0)  # never dialled
        memory = MemoryBroker()
        return Kit(
            settings,
            lambda: Fabric(settings, transport=memory.transport()),
            memory.transport,
            lambda other: Fabric(other, transport=memory.transport()),
        )
    settings = request.getfixturevalue("settings")
    return Kit(settings, lambda: Fabric(settings), lambda: MqttTransport(settings.broker), Fabric)
