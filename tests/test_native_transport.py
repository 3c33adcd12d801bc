"""The native MQTT 5 transport: against the real Mosquitto, and a scripted fake broker.

The scripted broker (tests/scripted_broker.py) does on demand what Mosquitto will not:
hold back acknowledgements, lower Receive Maximum, refuse with a chosen reason code, stay
silent to PINGREQ, send DISCONNECT with reason 142, or send garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mqttpush.errors import (
    AccessDeniedError,
    BrokerUnavailableError,
    ConfigurationError,
    ConnectionLostError,
    ProtocolError,
    SessionTakenOverError,
)
from mqttpush.settings import BrokerSettings
from mqttpush.tools.devbroker import LocalMosquitto, free_port
from mqttpush.transport.base import Message
from mqttpush.transport.native import NativeTransport
from tests.conftest import CONFIG
from tests.scripted_broker import Reader as Inbox
from tests.scripted_broker import ScriptedBroker, connack, connected

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def new_topic() -> str:
    return f"test/native/{uuid.uuid4().hex}"


def broker_settings(host: str, port: int, **values) -> BrokerSettings:
    return BrokerSettings(host=host, port=port, **values)


# --- the real broker ----------------------------------------------------------------------


async def test_round_trip_with_every_property(broker):
    topic = new_topic()
    settings = broker_settings(broker.host, broker.port)
    async with connected(settings) as sub, connected(settings) as pub, Inbox(sub) as inbox:
        assert sub.is_connected
        assert not sub.persistent
        assert not sub.session_present
        assert sub.where == f"{broker.host}:{broker.port}"
        await sub.subscribe(f"{topic}/#", 1)
        sent = Message(
            topic=f"{topic}/full",
            payload=b'{"x": 1}\x00\xff',
            qos=1,
            content_type="application/json",
            correlation_data=b"\x00corr-1\xff",
            response_topic=f"{topic}/replies",
            message_expiry=300,
            user_properties=(("b", "2"), ("a", "1"), ("b", "3"), ("ünï", "cödé")),
        )
        before = time.monotonic()
        assert await pub.publish(sent) is True
        assert await pub.publish(Message(f"{topic}/qos0", b"zero", qos=0)) is True
        await inbox.until(lambda: len(inbox.messages) == 2)
        got, zero = inbox.messages
        assert got == sent
        assert got.user_properties == sent.user_properties  # in order, repeats kept
        assert 290 <= (got.message_expiry or 0) <= 300
        assert before <= got.received_at <= time.monotonic()
        assert got.generation == 1
        assert got.mid > 0
        assert (zero.topic, zero.payload, zero.qos, zero.mid) == (f"{topic}/qos0", b"zero", 0, 0)

        # A retained message reaches a later subscriber with the retain flag.
        assert await pub.publish(Message(f"{topic}/kept", b"r", qos=1, retain=True))
        async with connected(settings) as late, Inbox(late) as late_inbox:
            await late.subscribe(f"{topic}/kept", 1)
            await late_inbox.until(lambda: bool(late_inbox.messages))
            assert late_inbox.messages[0].retain
            assert late_inbox.messages[0].payload == b"r"
        await pub.publish(Message(f"{topic}/kept", b"", qos=1, retain=True))  # clear it


async def test_qos1_to_nobody_returns_false(broker):
    topic = new_topic()
    settings = broker_settings(broker.host, broker.port)
    async with connected(settings) as pub:
        assert await pub.publish(Message(topic, b"lost", qos=1)) is False
        assert await pub.publish(Message(topic, b"qos0", qos=0)) is True
        async with connected(settings) as sub, Inbox(sub) as inbox:
            await sub.subscribe(topic, 1)
            assert await pub.publish(Message(topic, b"found", qos=1)) is True
            await inbox.until(lambda: inbox.payloads == [b"found"])


@pytest.mark.timeout_s(30)
async def test_unacked_message_is_redelivered_to_a_persistent_session(broker):
    topic = new_topic()
    client_id = f"native-{uuid.uuid4().hex[:12]}"
    durable = broker_settings(broker.host, broker.port, client_id=client_id, session_expiry=30)
    settings = broker_settings(broker.host, broker.port)
    sub = NativeTransport(durable)
    assert sub.persistent
    assert sub.client_id == client_id
    async with connected(settings) as pub:
        await sub.connect()
        await sub.subscribe(topic, 1)
        for name in (b"handled", b"unhandled"):
            assert await pub.publish(Message(topic, name, qos=1))
        received = sub.messages()
        async with asyncio.timeout(5):
            first = await anext(received)
            second = await anext(received)
        assert (first.payload, second.payload) == (b"handled", b"unhandled")
        await sub.ack(first)  # handled; the second one never is
        await received.aclose()  # type: ignore[attr-defined]  # an async generator
        await sub.disconnect()

        await sub.connect()
        assert sub.session_present
        assert sub.is_connected
        link = sub._link
        assert link is not None
        await sub.ack(second)  # from the previous connection: must not be acknowledged now
        assert link._out == []  # nothing was queued to be written
        assert await pub.publish(Message(topic, b"marker", qos=1))
        async with Inbox(sub) as inbox:
            await inbox.until(
                lambda: b"marker" in inbox.payloads and b"unhandled" in inbox.payloads
            )
            assert b"handled" not in inbox.payloads
            assert inbox.payloads.count(b"unhandled") == 1
            assert all(message.generation == 2 for message in inbox.messages)
        await sub.disconnect()

        await sub.connect()  # everything was acknowledged: nothing comes back
        assert sub.session_present
        async with Inbox(sub) as inbox:
            assert await pub.publish(Message(topic, b"last", qos=1))
            await inbox.until(lambda: b"last" in inbox.payloads)
            assert inbox.payloads == [b"last"]
        await sub.disconnect()
    await sub.disconnect()  # idempotent


async def test_connection_refused_is_broker_unavailable():
    port = free_port()
    transport = NativeTransport(broker_settings("127.0.0.1", port, connect_timeout=2))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=f"127.0.0.1:{port}: connection refused"):
        await transport.connect()
    assert time.monotonic() - started < 2
    assert not transport.is_connected
    with pytest.raises(ConnectionLostError, match="not connected"):
        await transport.publish(Message("t", b"x"))


@pytest.mark.timeout_s(30)
async def test_session_takeover_ends_the_first_connection(broker):
    client_id = f"native-{uuid.uuid4().hex[:12]}"
    settings = broker_settings(broker.host, broker.port, client_id=client_id, session_expiry=10)
    async with (
        connected(settings) as first,
        Inbox(first) as inbox,
        connected(settings) as second,
    ):
        await inbox.until(lambda: inbox.error is not None, timeout=10)
        # Mosquitto 2.0.11 closes without reason 142; newer ones send it.
        assert isinstance(inbox.error, ConnectionLostError)
        assert not first.is_connected  # messages() reported the drop
        assert second.is_connected
        await second.subscribe(new_topic(), 1)  # the new connection works


@pytest.mark.timeout_s(30)
async def test_a_killed_broker_fails_pending_publishes_at_once():
    with LocalMosquitto(CONFIG) as own:
        topic = new_topic()
        async with connected(broker_settings(own.host, own.port)) as pub, Inbox(pub) as inbox:
            await pub.subscribe(topic, 1)
            body = b"p" * 100_000
            tasks = [asyncio.create_task(pub.publish(Message(topic, body))) for _ in range(200)]
            await asyncio.sleep(0)  # the publishes are written
            own.kill()
            killed = time.monotonic()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert time.monotonic() - killed < 3  # not the PUBACK timeout
            lost = [r for r in results if isinstance(r, ConnectionLostError)]
            assert lost
            assert all(r is True or isinstance(r, ConnectionLostError) for r in results)
            await inbox.until(lambda: inbox.error is not None)
            assert not pub.is_connected
            with pytest.raises(ConnectionLostError):
                await pub.publish(Message(topic, b"after"))


@pytest.mark.timeout_s(60)
async def test_five_thousand_concurrent_qos1_messages_arrive_exactly_once(broker):
    topic = new_topic()
    count = 5_000
    settings = broker_settings(broker.host, broker.port)
    async with connected(settings) as sub, connected(settings) as pub, Inbox(sub) as inbox:
        await sub.subscribe(topic, 1)
        numbers = iter(range(count))

        async def lane() -> None:
            for n in numbers:
                assert await pub.publish(Message(topic, b"%d" % n + b"." * 180))

        started = time.monotonic()
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            for _ in range(200):
                group.create_task(lane())
        await inbox.until(lambda: len(inbox.messages) >= count, timeout=30)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)  # a duplicate would show up now
        seen = sorted(int(payload.split(b".", 1)[0]) for payload in inbox.payloads)
        assert seen == list(range(count))
        assert elapsed < 20


async def test_mosquittos_overrun_after_a_run_of_pubacks_is_read_not_refused(broker):
    # Mosquitto 2.0.11: hold Receive Maximum messages, acknowledge them all at once, and
    # it sends far more than Receive Maximum before the next PUBACK (286 over 100 seen).
    topic, count = new_topic(), 400
    settings = broker_settings(broker.host, broker.port, receive_maximum=100)
    async with connected(settings) as sub, connected(settings) as pub:
        await sub.subscribe(topic, 1)
        sent = asyncio.gather(*(pub.publish(Message(topic, b"%d" % n)) for n in range(count)))
        got: list[bytes] = []
        held: list[Message] = []
        generation = sub._generation
        async with asyncio.timeout(30):
            async for message in sub.messages():
                got.append(message.payload)
                held.append(message)
                if len(got) == 100:  # the Receive Maximum: the broker waits here
                    await asyncio.sleep(0.3)
                if len(got) >= 100:
                    for each in held:
                        await sub.ack(each)
                    held.clear()
                if len(got) == count:
                    break
        assert all(await sent)
        assert sorted(int(p) for p in got) == list(range(count))
        assert sub._generation == generation  # the same connection throughout


@pytest.mark.timeout_s(30)
async def test_one_megabyte_payloads_round_trip(broker):
    topic = new_topic()
    settings = broker_settings(broker.host, broker.port)
    payloads = [os.urandom(1 << 20) for _ in range(6)]
    async with connected(settings) as sub, connected(settings) as pub, Inbox(sub) as inbox:
        await sub.subscribe(topic, 1)
        assert await pub.publish(Message(topic, payloads[0]))
        await inbox.until(lambda: len(inbox.messages) == 1)
        # Several at once fill the socket buffer: the writers wait for it to drain.
        results = await asyncio.gather(*(pub.publish(Message(topic, p)) for p in payloads[1:]))
        assert results == [True] * 5
        await inbox.until(lambda: len(inbox.messages) == 6)
        assert sorted(inbox.payloads) == sorted(payloads)


async def test_unencodable_messages_are_refused_and_the_connection_stays(broker):
    topic = new_topic()
    async with connected(broker_settings(broker.host, broker.port)) as pub:
        for bad in (
            Message(f"{topic}/nul\x00", b"x"),
            Message(f"{topic}/ctl\x01", b"x"),
            Message(f"{topic}/+", b"x"),
            Message(topic, b"x", user_properties=(("k", "v" * 70_000),)),
            Message(topic, b"x", qos=0, response_topic="r" * 70_000),
        ):
            with pytest.raises(ProtocolError):
                await pub.publish(bad)
        with pytest.raises(ProtocolError):
            await pub.subscribe("", 1)
        assert await pub.publish(Message(topic, b"fine")) is False  # still connected
        await pub.disconnect()
        await pub.disconnect()
        assert not pub.is_connected
        with pytest.raises(ConnectionLostError, match="not connected"):
            await pub.publish(Message(topic, b"x"))
        with pytest.raises(ConnectionLostError, match="not connected"):
            await anext(pub.messages())
        await pub.connect()  # and it connects again
        assert await pub.publish(Message(topic, b"again")) is False


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A folder the broker can read after it drops root privileges (pytest's is 0700)."""
    with tempfile.TemporaryDirectory(prefix="mqttpush-native-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


@pytest.fixture
def tls_config(readable_dir: Path) -> Path:
    """A Mosquitto configuration with a TLS listener; the CA is ``ca.pem`` beside it."""
    folder = readable_dir
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=mqttpush test CA", cwd=folder)  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=folder)  # fmt: skip
    for path in folder.iterdir():
        path.chmod(0o644)
    conf = folder / "tls.conf"
    conf.write_text(
        "listener 1883\nallow_anonymous true\npersistence false\nlog_dest stdout\n"
        f"cafile {folder}/ca.pem\ncertfile {folder}/server.pem\nkeyfile {folder}/server.key\n"
    )
    return conf


@pytest.fixture
def auth_config(readable_dir: Path) -> Path:
    """A Mosquitto configuration that admits only alice, password secret."""
    passwd = readable_dir / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "alice", "secret"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    passwd.chmod(0o644)
    conf = readable_dir / "auth.conf"
    conf.write_text(
        "listener 1883\nallow_anonymous false\npersistence false\nlog_dest stdout\n"
        f"password_file {passwd}\n"
    )
    return conf


@pytest.mark.timeout_s(60)
async def test_tls_verification_failure_and_success(tls_config):
    with LocalMosquitto(tls_config) as tls_broker:
        host, port = tls_broker.host, tls_broker.port
        untrusted = NativeTransport(broker_settings(host, port, tls=True))
        with pytest.raises(BrokerUnavailableError, match="TLS certificate is not trusted"):
            await untrusted.connect()
        trusted = broker_settings(host, port, ca_file=tls_config.parent / "ca.pem")
        topic = new_topic()
        async with connected(trusted) as transport, Inbox(transport) as inbox:
            await transport.subscribe(topic, 1)
            assert await transport.publish(Message(topic, b"secret" * 10_000))
            await inbox.until(lambda: inbox.payloads == [b"secret" * 10_000])
        plain = NativeTransport(broker_settings(host, port))
        with pytest.raises(BrokerUnavailableError, match=f"{host}:{port}"):
            await plain.connect()  # no TLS to a TLS listener: the broker hangs up


async def test_unloadable_tls_files_are_a_configuration_error(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="cannot be loaded"):
        await NativeTransport(broker_settings("127.0.0.1", free_port(), ca_file=ca)).connect()


@pytest.mark.timeout_s(30)
async def test_mosquitto_refusing_credentials_is_named(auth_config):
    with LocalMosquitto(auth_config) as auth_broker:
        host, port = auth_broker.host, auth_broker.port
        for credentials in ({}, {"username": "alice", "password": "wrong"}):
            transport = NativeTransport(broker_settings(host, port, **credentials))
            with pytest.raises(BrokerUnavailableError, match=f"{host}:{port}") as caught:
                await transport.connect()
            assert "0x87 (not authorized)" in str(caught.value)
        good = broker_settings(host, port, username="alice", password="secret")
        async with connected(good) as transport:
            assert transport.is_connected


# --- a scripted fake broker ---------------------------------------------------------------


def FakeBroker(connack_packet: bytes | None = None, **values) -> ScriptedBroker:  # noqa: N802
    """The scripted broker answering every CONNECT with ``connack_packet``."""
    return ScriptedBroker(
        connacks=[connack() if connack_packet is None else connack_packet], **values
    )


@contextlib.asynccontextmanager
async def against(fake: ScriptedBroker, **values) -> AsyncIterator[tuple[NativeTransport, Inbox]]:
    """A connected transport reading its messages, on ``fake``."""
    async with fake, connected(fake.settings(**values)) as transport, Inbox(transport) as inbox:
        yield transport, inbox


@pytest.mark.parametrize(
    ("code", "named"),
    [
        (0x86, "reason code 0x86 (bad user name or password)"),
        (0x87, "reason code 0x87 (not authorized)"),
        (0x85, "reason code 0x85 (client identifier not valid)"),
        (0x8A, "reason code 0x8a (banned)"),
        (0x84, "reason code 0x84 (unsupported protocol version)"),
        (0x88, "reason code 0x88 (server unavailable)"),
        (0x89, "reason code 0x89 (server busy)"),
        (0xA5, "reason code 0xa5"),
    ],
)
async def test_connack_refusals_name_their_reason(code, named):
    async with FakeBroker(connack(code, b"\x1f\x00\x04nope")) as fake:
        transport = NativeTransport(fake.settings())
        with pytest.raises(BrokerUnavailableError) as caught:
            await transport.connect()
        text = str(caught.value)
        assert text.startswith(f"cannot connect to the MQTT broker at 127.0.0.1:{fake.port}: ")
        assert named in text
        assert "nope" in text  # the broker's reason string
        assert "\n" not in text
        assert not transport.is_connected


async def test_connect_timeout_when_no_connack_comes():
    async with FakeBroker(b"") as fake:
        transport = NativeTransport(fake.settings(connect_timeout=0.3))
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError, match=r"no answer within 0\.3 s"):
            await transport.connect()
        assert time.monotonic() - started < 2


async def test_session_flags_and_connect_properties_reach_the_broker():
    async with FakeBroker(connack(props=b"\x21\x00\x05", session_present=True)) as fake:
        transport = NativeTransport(fake.settings(client_id="fixed-id", session_expiry=60))
        await transport.connect()
        assert transport.session_present
        assert transport.client_id == "fixed-id"
        await transport.disconnect()
        for _ in range(100):  # bounded: until the fake broker has read the DISCONNECT
            if 14 in fake.kinds:
                break
            await asyncio.sleep(0.02)
        assert fake.kinds == [1, 14]  # CONNECT, then DISCONNECT


@pytest.mark.timeout_s(30)
async def test_publishes_in_flight_never_exceed_the_brokers_receive_maximum():
    fake = FakeBroker(connack(props=b"\x21\x00\x03"), ack_publishes=False)
    async with against(fake) as (transport, _):
        tasks = [asyncio.create_task(transport.publish(Message("t", b"%d" % i))) for i in range(20)]
        for _ in range(100):  # bounded: 20 publishes in batches of at most 3
            if all(task.done() for task in tasks):
                break
            await asyncio.sleep(0.02)
            assert len(fake.unacked) <= 3
            fake.ack_all()
        assert [await task for task in tasks] == [True] * 20
        assert fake.publishes == 20
        assert fake.most_unacked == 3
        assert fake.reused_ids == 0


@pytest.mark.timeout_s(30)
async def test_a_full_socket_buffer_makes_publishers_wait():
    fake = FakeBroker()
    async with against(fake) as (transport, _):
        fake.reading.clear()
        body = b"m" * (1 << 20)
        blocked = None
        for _ in range(64):  # bounded: loopback socket buffers hold a few MiB
            task = asyncio.create_task(transport.publish(Message("t/big", body, qos=0)))
            done, _pending = await asyncio.wait({task}, timeout=0.3)
            if not done:
                blocked = task
                break
        assert blocked is not None, "the publisher never had to wait"
        fake.reading.set()
        assert await asyncio.wait_for(blocked, 10) is True
        assert await transport.publish(Message("t/big", b"last", qos=1)) is True
        assert fake.publishes >= 3


async def test_refused_publish_and_subscription_are_protocol_errors():
    async with against(FakeBroker(puback_reason=0x87, suback_reason=0x87)) as (transport, _):
        with pytest.raises(AccessDeniedError, match=r"denied the publish.*0x87 \(not authorized\)"):
            await transport.publish(Message("t/1", b"x"))
        with pytest.raises(AccessDeniedError, match=r"'t/#'.*0x87"):
            await transport.subscribe("t/#", 1)
        assert await transport.publish(Message("t/1", b"x", qos=0)) is True
    async with against(FakeBroker(puback_reason=0x97, suback_reason=0x80)) as (transport, _):
        with pytest.raises(ProtocolError, match=r"0x97 \(quota exceeded\)") as caught:
            await transport.publish(Message("t/1", b"x"))
        assert not isinstance(caught.value, AccessDeniedError)
        with pytest.raises(ProtocolError, match=r"'t/#'.*0x80"):
            await transport.subscribe("t/#", 1)


async def test_a_missing_puback_times_out_as_connection_lost():
    fake = FakeBroker(ack_publishes=False)
    async with against(fake, connect_timeout=0.2) as (transport, _):
        started = time.monotonic()
        with pytest.raises(ConnectionLostError, match="no acknowledgement"):
            await transport.publish(Message("t/slow", b"x"))
        assert 0.4 <= time.monotonic() - started < 2
        assert transport.is_connected
        fake.ack_all()  # a late PUBACK is ignored; its packet id was kept until now
        fake.ack_publishes = True
        assert await transport.publish(Message("t/slow", b"y")) is True


@pytest.mark.timeout_s(20)
async def test_keepalive_pings_and_a_silent_broker_is_a_lost_connection():
    one_second = connack(props=b"\x13\x00\x01")  # Server Keep Alive: 1 s
    fake = FakeBroker(one_second)
    async with against(fake) as (_, inbox):
        await asyncio.sleep(2.5)
        assert fake.kinds.count(12) >= 2  # PINGREQ while idle
        assert inbox.error is None
    async with against(FakeBroker(one_second, answer_pings=False)) as (_, inbox):
        await inbox.until(lambda: inbox.error is not None, timeout=5)
        assert "PINGRESP" in str(inbox.error)
        assert not isinstance(inbox.error, SessionTakenOverError)


async def test_disconnect_with_reason_142_is_a_session_takeover():
    fake = FakeBroker(ack_publishes=False)
    async with against(fake, client_id="mine", session_expiry=5) as (transport, inbox):
        pending = asyncio.create_task(transport.publish(Message("t", b"x")))
        await asyncio.sleep(0.05)
        fake.send(b"\xe0\x01\x8e")
        await inbox.until(lambda: inbox.error is not None)
        assert isinstance(inbox.error, SessionTakenOverError)
        assert "'mine'" in str(inbox.error)
        with pytest.raises(ConnectionLostError):
            await pending


async def test_disconnect_from_the_broker_and_a_hang_up_fail_pending_publishes():
    fake = FakeBroker(ack_publishes=False)
    async with against(fake) as (transport, inbox):
        pending = asyncio.create_task(transport.publish(Message("t", b"x")))
        await asyncio.sleep(0.05)
        fake.send(b"\xe0\x05\x8b\x03\x1f\x00\x00")  # server shutting down
        await inbox.until(lambda: inbox.error is not None)
        assert type(inbox.error) is ConnectionLostError
        assert "0x8b (server shutting down)" in str(inbox.error)
        with pytest.raises(ConnectionLostError):
            await pending
    fake = FakeBroker(ack_publishes=False)
    async with against(fake) as (transport, inbox):
        pending = asyncio.create_task(transport.publish(Message("t", b"x")))
        await asyncio.sleep(0.05)
        fake.hang_up()
        with pytest.raises(ConnectionLostError, match="lost"):
            await asyncio.wait_for(pending, 5)
        await inbox.until(lambda: inbox.error is not None)


async def test_malformed_data_from_the_broker_ends_the_connection():
    fake = FakeBroker()
    async with against(fake) as (_, inbox):
        fake.send(b"\x30\xff\xff\xff\xff\x01")
        await inbox.until(lambda: inbox.error is not None)
        assert "malformed" in str(inbox.error)
