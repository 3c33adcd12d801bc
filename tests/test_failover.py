"""Several broker nodes: the servers setting, connecting to any, failing over, Server Reference.

Against scripted brokers (tests/scripted_broker.py) on 127.0.0.1; a node that is down
is a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from mqttpush.connection import Connection
from mqttpush.errors import BrokerUnavailableError, ConfigurationError
from mqttpush.servers import Server, parse_server, parse_servers
from mqttpush.settings import BrokerSettings, Settings
from mqttpush.tools import cli
from mqttpush.tools.parser import build_parser
from mqttpush.transport.native import NativeTransport
from tests.scripted_broker import ScriptedBroker, connack, disconnect, running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connection(*servers: str, **values: object) -> Connection:
    values = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2, **values}
    settings = BrokerSettings(servers=list(servers), **values)
    return Connection(NativeTransport(settings), settings)


@pytest.mark.parametrize(
    ("text", "server"),
    [
        ("node-a", Server("node-a", 1883)),
        ("node-a:1884", Server("node-a", 1884)),
        ("mqtt://node-a:1885", Server("node-a", 1885)),
        ("mqtts://node-a", Server("node-a", 8883, tls=True)),
        ("MQTTS://node-a:9000", Server("node-a", 9000, tls=True)),
        ("[::1]:1886", Server("::1", 1886)),
    ],
)
def test_a_broker_address_is_host_port_or_an_mqtt_url(text, server):
    assert parse_server(text) == server
    assert parse_server(str(server)) == server


@pytest.mark.parametrize("text", ["http://node-a", "node-a:99999", "mqtt://", "a:1/path", "u@a:1"])
def test_what_is_not_a_broker_address_is_refused(text):
    with pytest.raises(ValueError, match="broker"):
        parse_server(text)


def test_the_servers_setting_reads_a_list_or_commas_and_falls_back_to_host_and_port(monkeypatch):
    assert parse_servers("a:1, b:2 mqtts://c") == [
        Server("a", 1),
        Server("b", 2),
        Server("c", 8883, tls=True),
    ]
    assert BrokerSettings(host="h", port=7).server_list() == [Server("h", 7)]
    monkeypatch.setenv("MQTTPUSH_BROKER__SERVERS", "node-a:1883,node-b:1884")
    settings = Settings.load(None)
    assert settings.broker.server_list() == [Server("node-a", 1883), Server("node-b", 1884)]
    monkeypatch.setenv("MQTTPUSH_BROKER__SERVERS", "node-a:1883,ftp://node-b")
    with pytest.raises(ConfigurationError, match="servers"):
        Settings.load(None)


@pytest.mark.timeout_s(20)
async def test_the_first_connection_goes_to_the_first_node_that_answers():
    async with ScriptedBroker() as up:
        connection = _connection(f"127.0.0.1:{_free_port()}", f"127.0.0.1:{up.port}")
        async with running(connection):
            assert connection.server == Server("127.0.0.1", up.port)
            assert up.connections == 1


@pytest.mark.timeout_s(20)
async def test_no_node_answering_fails_with_the_last_nodes_error():
    down = [_free_port(), _free_port()]
    connection = _connection(*(f"127.0.0.1:{port}" for port in down))
    with pytest.raises(BrokerUnavailableError, match=str(down[1])):
        await connection.open()


@pytest.mark.timeout_s(20)
async def test_a_dropped_connection_fails_over_to_the_next_node_with_its_session():
    async with ScriptedBroker() as a, ScriptedBroker() as b:
        connection = _connection(
            f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}", client_id="pinned", session_expiry=60
        )
        async with running(connection):
            await connection.subscribe("t/#")
            a.hang_up()  # node A dies
            await b.until(lambda: len(b.of_kind(8)) == 1)  # the subscription restored on B
            async with asyncio.timeout(5):
                while connection.reconnects == 0:
                    await asyncio.sleep(0.01)
            assert connection.server == Server("127.0.0.1", b.port)
            assert a.connections == 1  # the first attempt went to the other node
            # The same client id, still asking for its session to be kept (clean start 0).
            [connect] = b.of_kind(1)
            assert b"pinned" in connect.body
            assert connect.body[7] & 0x02 == 0


@pytest.mark.timeout_s(20)
async def test_a_server_reference_on_disconnect_is_followed_at_once():
    async with ScriptedBroker() as a, ScriptedBroker() as b, ScriptedBroker() as c:
        # A is listed first and C second; A sends the client to B, which is not listed.
        connection = _connection(
            f"127.0.0.1:{a.port}", f"127.0.0.1:{c.port}", reconnect_max_delay=5.0
        )
        async with running(connection):
            reference = f"127.0.0.1:{b.port}".encode()
            a.send(disconnect(0x9C, b"\x1c" + len(reference).to_bytes(2, "big") + reference))
            a.hang_up()
            async with asyncio.timeout(3):  # not the 2.5-5 s of the longest wait
                while b.connections == 0:
                    await asyncio.sleep(0.02)
            assert c.connections == 0
            assert connection.server == Server("127.0.0.1", b.port)


@pytest.mark.timeout_s(20)
async def test_a_server_reference_on_a_refused_connack_is_followed():
    async with ScriptedBroker() as b:
        reference = f"127.0.0.1:{b.port}".encode()
        props = b"\x1c" + len(reference).to_bytes(2, "big") + reference
        async with ScriptedBroker(connacks=[connack(), connack(0x9D, props)]) as a:
            connection = _connection(f"127.0.0.1:{a.port}")
            async with running(connection):
                a.hang_up()  # reconnecting to A: refused, "server moved" to B
                async with asyncio.timeout(5):
                    while b.connections == 0:
                        await asyncio.sleep(0.02)
                await asyncio.sleep(0.2)
                assert connection.server == Server("127.0.0.1", b.port)
                assert connection.connected.is_set()


def test_the_command_line_takes_the_broker_list_over_the_settings(monkeypatch):
    monkeypatch.setenv("MQTTPUSH_BROKER__SERVERS", "env-node:1")
    monkeypatch.setenv("MQTTPUSH_BROKER__USERNAME", "kept")
    args = build_parser().parse_args(["--brokers", "a:1883,mqtts://b", "config", "show"])
    settings = cli._settings(args)
    assert settings.broker.server_list() == [Server("a", 1883), Server("b", 8883, tls=True)]
    assert settings.broker.username == "kept"  # the rest of the section is untouched
    assert cli._settings(build_parser().parse_args(["config", "show"])).broker.server_list() == [
        Server("env-node", 1)
    ]
