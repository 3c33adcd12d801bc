"""The secure profile against a real Mosquitto with generated material: every denial shown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from mqttpush import (
    AccessDeniedError,
    Agent,
    AuthenticationError,
    Fabric,
    PushNotification,
    TlsError,
)
from mqttpush.address import Address, Topics
from mqttpush.codec import Envelope, encode_notification
from mqttpush.models import TaskState
from mqttpush.settings import AgentSettings, DemoSettings, RpcSettings, Settings
from mqttpush.tools.demo import PushReceiver, PushSender, run_client
from mqttpush.tools.security.broker import SecureMosquitto, client_settings
from mqttpush.tools.security.commands import configured_identities
from mqttpush.tools.security.material import create_material
from mqttpush.transport import Message, create_transport
from tests.conftest import REPO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mqttpush.settings import BrokerSettings
    from mqttpush.tools.security.material import Material

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"
TOPICS = Topics("mqttpush/v1")


@pytest.fixture(scope="module")
def material() -> Iterator[Material]:
    # Not under pytest's private tmp root: the broker, started as root, drops to the
    # mosquitto user, which must be able to reach the files it reads.
    with tempfile.TemporaryDirectory(prefix="mqttpush-secure-") as base:
        Path(base).chmod(0o711)
        yield create_material(Path(base) / "material", configured_identities(Settings()), TOPICS)


@pytest.fixture(scope="module")
def secure_broker(material: Material) -> Iterator[SecureMosquitto]:
    with SecureMosquitto(REPO / "mosquitto-secure.conf", material.directory) as broker:
        yield broker


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Material:
    """Material from another CA: certificates the broker must not trust, and vice versa."""
    directory = tmp_path_factory.mktemp("rogue") / "material"
    return create_material(directory, configured_identities(Settings()), TOPICS)


def as_identity(
    material: Material, broker: SecureMosquitto, name: str, **changes: Any
) -> BrokerSettings:
    settings = client_settings(material, name, port=broker.port)
    return settings.model_copy(update=changes)


def secure_settings(broker_settings: BrokerSettings) -> Settings:
    return Settings(
        broker=broker_settings,
        rpc=RpcSettings(confine_replies=True),
        agent=AgentSettings(require_push_token=True),
        demo=DemoSettings(notification_interval=0.0),
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def watching(material: Material, broker: SecureMosquitto, topic_filter: str):
    """The read-only "watch" identity, recording every message under ``topic_filter``."""
    transport = create_transport(as_identity(material, broker, "watch"))
    await transport.connect()
    seen: list[Message] = []

    async def read() -> None:
        async for message in transport.messages():
            seen.append(message)
            await transport.ack(message)

    await transport.subscribe(topic_filter)
    reader = asyncio.create_task(read())
    try:
        yield seen
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await transport.disconnect()


async def test_the_right_identity_connects_over_tls(material, secure_broker):
    transport = create_transport(as_identity(material, secure_broker, "client"))
    await transport.connect()
    assert transport.is_connected
    await transport.disconnect()


async def test_anonymous_connections_are_refused(material, secure_broker):
    no_user = as_identity(material, secure_broker, "client", username=None, password=None)
    assert no_user.secret() is None
    with pytest.raises(AuthenticationError, match="anonymous"):
        await create_transport(no_user).connect()
    no_certificate = no_user.model_copy(update={"cert_file": None, "key_file": None})
    with pytest.raises(TlsError):
        await create_transport(no_certificate).connect()


async def test_a_wrong_password_is_refused_and_says_so(material, secure_broker):
    wrong = as_identity(material, secure_broker, "sender", password=SecretStr("not-the-password"))
    # Mosquitto 2.0.11 answers a wrong password with 0x87 "not authorized" (not 0x86).
    with pytest.raises(
        AuthenticationError, match=r"refused user 'sender'.*(not authorized|bad user)"
    ):
        await create_transport(wrong).connect()
    someone_elses = as_identity(
        material, secure_broker, "sender", password=SecretStr(material.password("receiver"))
    )
    with pytest.raises(AuthenticationError):
        await create_transport(someone_elses).connect()


async def test_untrusted_certificates_are_refused_both_ways(material, rogue, secure_broker):
    # A client certificate from another CA: the broker refuses the handshake.
    foreign_client = as_identity(
        material,
        secure_broker,
        "client",
        cert_file=rogue.cert("client"),
        key_file=rogue.key("client"),
    )
    with pytest.raises(TlsError):
        await create_transport(foreign_client).connect()
    # A client that trusts another CA does not accept the broker's certificate.
    distrusting = as_identity(material, secure_broker, "client", ca_file=rogue.ca_cert)
    with pytest.raises(TlsError, match="not trusted"):
        await create_transport(distrusting).connect()


async def test_publishing_to_another_agents_push_topic_is_denied_and_never_arrives(
    material, secure_broker
):
    push_topic = TOPICS.push(Address.parse(RECEIVER), "forged")
    rpc_topic = TOPICS.rpc(Address.parse(RECEIVER))
    async with watching(material, secure_broker, "mqttpush/v1/#") as seen:
        client = create_transport(as_identity(material, secure_broker, "client"))
        await client.connect()
        try:
            with pytest.raises(AccessDeniedError, match="denied the publish"):
                await client.publish(Message(push_topic, b'{"forged": true}', qos=1))
            # The client may call the receiver: this marker arrives, after where the
            # denied message would have been, had the broker let it through.
            await client.publish(Message(rpc_topic, b'{"marker": true}', qos=1))
            await eventually(lambda: any(m.topic == rpc_topic for m in seen))
        finally:
            await client.disconnect()
        assert [m.topic for m in seen] == [rpc_topic]


async def test_subscribing_to_another_agents_rpc_topic_is_denied_and_nothing_arrives(
    material, secure_broker
):
    sender_rpc = TOPICS.rpc(Address.parse(SENDER))
    spy = create_transport(as_identity(material, secure_broker, "client"))
    await spy.connect()
    got: list[Message] = []

    async def read() -> None:
        async for message in spy.messages():
            got.append(message)  # noqa: PERF401 - appended as they arrive, while the test runs

    reader = asyncio.create_task(read())
    try:
        # Mosquitto 2.0.11 acknowledges the subscription and then delivers nothing from
        # it (read access is checked per message); brokers that check it on SUBSCRIBE
        # answer 0x87, which mqttpush raises as AccessDeniedError.
        with contextlib.suppress(AccessDeniedError):
            await spy.subscribe(sender_rpc)
        async with watching(material, secure_broker, sender_rpc) as seen:
            caller = create_transport(as_identity(material, secure_broker, "receiver"))
            await caller.connect()
            try:
                await caller.publish(Message(sender_rpc, b'{"secret": 1}', qos=1))
            finally:
                await caller.disconnect()
            await eventually(lambda: len(seen) == 1)  # it was sent, and delivered to others
        await asyncio.sleep(0.2)
        assert got == []
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await spy.disconnect()


class TokenCollector(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[PushNotification] = []

    async def on_message(self, notification: PushNotification) -> None:
        self.got.append(notification)


async def test_a_forged_notification_with_a_wrong_token_is_rejected(material, secure_broker):
    settings = secure_settings(as_identity(material, secure_broker, "receiver"))
    async with (
        Fabric(settings) as fabric,
        watching(material, secure_broker, "mqttpush/v1/fame.fabric/sender/ack") as receipts,
    ):
        collector = await fabric.serve(TokenCollector(), RECEIVER)
        collector.expect_push_token("t1", "the-right-token")
        # The sender identity may push to the receiver (the ACL allows it), so only the
        # token tells a forged notification from a real one.
        forger = create_transport(as_identity(material, secure_broker, "sender"))
        await forger.connect()
        topic = TOPICS.push(Address.parse(RECEIVER), "t1")

        def notification(seq: int, token: str | None, task_id: str = "t1") -> Message:
            body = PushNotification(
                task_id=task_id, seq=seq, state=TaskState.WORKING, message=f"n{seq}"
            )
            where = TOPICS.push(Address.parse(RECEIVER), task_id)
            return encode_notification(where, body, Envelope(SENDER, "push", None, None, token))

        try:
            await forger.publish(notification(1, "a-wrong-token"))
            await forger.publish(notification(2, None))
            # No token registered for this task: rejected too, tokens being required.
            await forger.publish(notification(3, "anything", task_id="unregistered"))
            await eventually(lambda: collector.stats.notifications_rejected == 3)
            assert collector.got == []
            await forger.publish(notification(4, "the-right-token"))
            await eventually(lambda: len(collector.got) == 1)
        finally:
            await forger.disconnect()
        assert [n.seq for n in collector.got] == [4]
        assert collector.stats.notifications_rejected == 3
        await eventually(lambda: len(receipts) == 1)  # a receipt for the real one only
        assert json.loads(receipts[0].payload)["seq"] == 4
        assert topic == receipts[0].topic.replace("sender/ack", "receiver/push/t1")


async def test_a_request_cannot_make_an_agent_reply_outside_the_reply_topics(
    material, secure_broker
):
    """The client may not write the sender's receipt topic: nor may it get the receiver to."""
    sender_receipts = TOPICS.receipts(Address.parse(SENDER))
    settings = secure_settings(as_identity(material, secure_broker, "receiver"))
    async with (
        Fabric(settings) as fabric,
        watching(material, secure_broker, "mqttpush/v1/#") as seen,
    ):
        receiver = await fabric.serve(TokenCollector(), RECEIVER)
        client = create_transport(as_identity(material, secure_broker, "client"))
        await client.connect()
        try:
            rpc = TOPICS.rpc(Address.parse(RECEIVER))
            body = b'{"jsonrpc":"2.0","id":1,"method":"get_task_status","params":{"task_id":"x"}}'
            await client.publish(Message(rpc, body, qos=1, response_topic=sender_receipts))
            await eventually(lambda: receiver.stats.replies_refused == 1)
        finally:
            await client.disconnect()
        await asyncio.sleep(0.2)
        assert [m.topic for m in seen] == [rpc]  # the request; no reply on the receipt topic


@pytest.mark.timeout_s(60)
async def test_seed_scenario_end_to_end_under_the_secure_profile(material, secure_broker):
    def as_(name: str) -> Settings:
        return secure_settings(as_identity(material, secure_broker, name))

    async with Fabric(as_("sender")) as sender_fabric, Fabric(as_("receiver")) as receiver_fabric:
        await sender_fabric.serve(PushSender(count=9, interval=0), SENDER)
        receiver = await receiver_fabric.serve(PushReceiver(SENDER, task_timeout=30), RECEIVER)
        result = await run_client(as_("client"))
        assert result == {"notifications": [f"Notification #{i}" for i in range(1, 10)]}
        assert receiver.stats.notifications == 10
        assert receiver.stats.notifications_rejected == 0


def test_the_cli_reports_refused_credentials_in_one_line(material, secure_broker, tmp_path: Path):
    bad = tmp_path / "bad.password"
    bad.write_text("wrong\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
    env.update({
        "MQTTPUSH_PROFILE": "secure",
        "MQTTPUSH_CONFIG_DIR": str(REPO / "config"),
        "MQTTPUSH_BROKER__PORT": str(secure_broker.port),
        "MQTTPUSH_BROKER__CA_FILE": str(material.ca_cert),
        "MQTTPUSH_BROKER__CERT_FILE": str(material.cert("client")),
        "MQTTPUSH_BROKER__KEY_FILE": str(material.key("client")),
        "MQTTPUSH_BROKER__USERNAME": "client",
        "MQTTPUSH_BROKER__PASSWORD_FILE": str(bad),
    })  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "mqttpush", "call", RECEIVER, "get_task_status", "--params",
         '{"task_id": "x"}', "--timeout", "2"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.startswith("mqttpush:")]
    assert done.returncode == 7, done.stderr
    assert len(lines) == 1, done.stderr
    assert "refused user 'client'" in lines[0]
    assert "not authorized" in lines[0] or "bad user name or password" in lines[0]
