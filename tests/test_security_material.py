"""The secure profile's generated material: ACL text, password hashes, certificates, files.

The broker-facing checks run a real Mosquitto with ``mosquitto-secure.conf`` and the
generated material; the material is made once per module (openssl takes a while).
"""

from __future__ import annotations

import asyncio
import base64
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from mqttpush.address import Address, Topics
from mqttpush.errors import AuthenticationError, ConfigurationError, ProtocolError, TlsError
from mqttpush.settings import BrokerSettings
from mqttpush.tools.security import (
    Identity,
    Material,
    SecureMosquitto,
    client_settings,
    create_material,
    demo_identities,
    hash_password,
    new_password,
    password_file,
    render_acl,
    render_secure_config,
    rotate_password,
    verify_password,
)
from mqttpush.tools.security.broker import check_reachable, closed_folder
from mqttpush.tools.security.certs import openssl
from mqttpush.tools.security.material import broker_group
from mqttpush.transport.base import Message
from mqttpush.transport.native import NativeTransport
from mqttpush.transport.native.packets.encode import encode_connect
from tests.conftest import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"
TOPICS = Topics()
SECURE_CONF = REPO / "mosquitto-secure.conf"
IDENTITIES = demo_identities(SENDER, RECEIVER)
SECRET_SUFFIXES = (".key", ".password")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def material() -> Iterator[Material]:
    # Outside pytest's private (0700) tmp root: the broker drops to the mosquitto user.
    with tempfile.TemporaryDirectory(prefix="mqttpush-material-") as base:
        Path(base).chmod(0o711)
        yield create_material(Path(base) / "material", IDENTITIES, TOPICS)


def test_material_the_broker_cannot_reach_is_refused_by_name(material):
    closed = material.directory.parent / "closed"  # its parent is open, it is not
    closed.mkdir(mode=0o700)
    try:
        pwd.getpwnam("mosquitto")
        drops_privileges = os.geteuid() == 0
    except KeyError:
        drops_privileges = False
    if not drops_privileges:  # the broker runs as this user and reads what it can
        assert closed_folder(closed / "material") is None
        return
    assert closed_folder(closed / "material") == closed
    with pytest.raises(ConfigurationError, match=r"cannot enter .*chmod o\+x"):
        check_reachable(closed / "material")


@pytest.fixture(scope="module")
def secure_broker(material: Material) -> Iterator[SecureMosquitto]:
    with SecureMosquitto(SECURE_CONF, material.directory) as broker:
        yield broker


def copy_material(material: Material, target: Path) -> Path:
    """A copy to change freely; create_material gives the copies back to the broker's group."""
    shutil.copytree(material.directory, target)
    create_material(target, IDENTITIES, TOPICS)
    return target


async def can_connect(settings: BrokerSettings) -> bool:
    """Whether the broker lets ``settings`` in; refused means credentials or TLS, nothing else."""
    transport = NativeTransport(settings)
    try:
        await transport.connect()
    except (AuthenticationError, TlsError):
        return False
    await transport.disconnect()
    return True


# --- ACL -----------------------------------------------------------------------------


def test_acl_of_the_demo_identities_is_exactly_the_needed_grants():
    p = "mqttpush/v1"
    s, r = f"{p}/fame.fabric/sender", f"{p}/fame.fabric/receiver"
    expected = [
        "user sender",
        f"topic read {s}/rpc",
        f"topic read {s}/push/+",
        f"topic read {s}/ack",
        f"topic read {p}/_reply/sender/#",
        f"topic write {p}/_reply/#",
        f"topic write {r}/push/+",
        "user receiver",
        f"topic read {r}/rpc",
        f"topic read {r}/push/+",
        f"topic read {r}/ack",
        f"topic read {p}/_reply/receiver/#",
        f"topic write {p}/_reply/#",
        f"topic write {s}/rpc",
        f"topic write {s}/ack",
        "user client",
        f"topic read {p}/_reply/client/#",
        f"topic write {r}/rpc",
        "user watch",
        f"topic read {p}/_reply/watch/#",
        f"topic read {p}/#",
    ]
    text = render_acl(IDENTITIES, TOPICS)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == expected
    assert text.startswith("# ")  # the header says where the file comes from


def test_acl_writes_no_wildcard_outside_the_reply_tree():
    text = render_acl(IDENTITIES, Topics("t/secure"))
    writes = [line.split()[2] for line in text.splitlines() if line.startswith("topic write")]
    assert writes
    for topic in writes:
        assert topic.startswith("t/secure/")
        if "#" in topic:
            assert topic == "t/secure/_reply/#"
        if "+" in topic:  # only the task-id level of a push topic
            assert topic.endswith("/push/+")
            assert topic.count("+") == 1


def test_acl_topics_come_from_topics():
    topics = Topics("a/b")
    who = Address.parse(RECEIVER)
    text = render_acl([Identity("r", address=RECEIVER)], topics)
    assert f"topic read {topics.rpc(who)}\n" in text
    assert f"topic read {topics.push_base(who)}/+\n" in text
    assert f"topic read {topics.receipts(who)}\n" in text
    assert f"topic read {topics.reply_base('r')}/#\n" in text


def test_identities_are_validated():
    with pytest.raises(ValueError, match="identity name"):
        Identity("a/b")
    with pytest.raises(ValueError, match="identity name"):
        Identity("$SYS")
    with pytest.raises(ValueError, match="name@domain"):
        Identity("x", calls=("nobody",))
    with pytest.raises(ConfigurationError, match="':'"):
        Identity("a:b")
    with pytest.raises(ConfigurationError, match="unique"):
        render_acl([Identity("x"), Identity("x")], TOPICS)


# --- passwords -----------------------------------------------------------------------


def test_hash_is_the_one_mosquitto_passwd_writes(tmp_path):
    path = tmp_path / "pw"
    path.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(path), "alice", "s3cret pw"], check=True)
    name, _, encoded = path.read_text().strip().partition(":")
    assert name == "alice"
    _, seven, iterations, salt, _digest = encoded.split("$")
    assert seven == "7"
    raw_salt = base64.b64decode(salt)
    assert len(raw_salt) == 12
    assert hash_password("s3cret pw", salt=raw_salt, iterations=int(iterations)) == encoded
    assert verify_password("s3cret pw", encoded)
    assert not verify_password("s3cret pw!", encoded)


def test_hash_format_and_helpers():
    encoded = hash_password("pw")
    _, seven, iterations, salt, digest = encoded.split("$")
    assert (seven, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64
    assert hash_password("pw") != encoded  # a fresh salt each time
    assert not verify_password("pw", "$6$not$ours")
    with pytest.raises(ConfigurationError, match="12 bytes"):
        hash_password("pw", salt=b"short")
    assert password_file({"a": "$7$h1", "b": "$7$h2"}) == "a:$7$h1\nb:$7$h2\n"
    passwords = {new_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) == 32 and p.isascii() and p.isprintable() for p in passwords)


# --- against a real broker -----------------------------------------------------------


@pytest.mark.timeout_s(60)
async def test_every_identity_connects_and_a_wrong_password_is_refused(material, secure_broker):
    for identity in IDENTITIES:
        assert await can_connect(client_settings(material, identity.name, port=secure_broker.port))
    right = client_settings(material, "client", port=secure_broker.port)
    with pytest.raises(AuthenticationError):
        await NativeTransport(right.model_copy(update={"password": SecretStr("wrong")})).connect()
    # another identity's password is wrong too
    other = right.model_copy(update={"password": SecretStr(material.password("sender"))})
    assert not await can_connect(other)


@pytest.mark.timeout_s(60)
async def test_a_client_without_certificate_is_refused(material, secure_broker):
    settings = BrokerSettings(
        host="127.0.0.1",
        port=secure_broker.port,
        tls=True,
        ca_file=material.ca_cert,
        username="client",
        password=material.password("client"),
    )
    assert not await can_connect(settings)


@pytest.mark.timeout_s(60)
async def test_the_acl_is_enforced(material, secure_broker):
    def connect(name: str) -> NativeTransport:
        return NativeTransport(client_settings(material, name, port=secure_broker.port))

    client, receiver, watch = connect("client"), connect("receiver"), connect("watch")
    for transport in (client, receiver, watch):
        await transport.connect()
    try:
        rpc = TOPICS.rpc(Address.parse(RECEIVER))
        reply = f"{TOPICS.reply_base('client')}/{uuid.uuid4().hex}"
        await receiver.subscribe(rpc)
        await watch.subscribe(f"{TOPICS.prefix}/#")
        await client.subscribe("#")  # granted by Mosquitto, but only readable topics arrive
        with pytest.raises(ProtocolError, match="not authorized"):
            await client.publish(Message(TOPICS.rpc(Address.parse(SENDER)), b"{}"))
        with pytest.raises(ProtocolError, match="not authorized"):
            await client.publish(Message(f"{TOPICS.reply_base('watch')}/x", b"{}"))
        await client.publish(Message(rpc, b"request"))
        await receiver.publish(Message(reply, b"reply"))

        async def first(transport: NativeTransport) -> Message:
            async for message in transport.messages():
                return message
            raise AssertionError("the connection ended")

        assert (await first(receiver)).payload == b"request"
        assert (await first(watch)).topic == rpc
        assert (await first(watch)).topic == reply
        # the request went out first; the client could not read it, so the reply is first
        assert (await first(client)).topic == reply
    finally:
        for transport in (client, receiver, watch):
            await transport.disconnect()


def tls_handshake(material: Material, port: int, version: ssl.TLSVersion) -> bytes:
    """Handshake at exactly ``version`` as ``client`` and return the CONNACK's first bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = context.maximum_version = version
    # Security level 0 lets the client offer TLS 1.0/1.1, so a refusal is the broker's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_verify_locations(material.ca_cert)
    context.load_cert_chain(material.cert("client"), material.key("client"))
    connect = encode_connect(
        f"tls-{uuid.uuid4().hex[:8]}",
        keepalive=30,
        username="client",
        password=material.password("client"),
    )
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == {
            ssl.TLSVersion.TLSv1_2: "TLSv1.2",
            ssl.TLSVersion.TLSv1_3: "TLSv1.3",
        }.get(version)
        tls.sendall(connect)
        data = b""
        for _ in range(10):  # a CONNACK's first 4 bytes, however the reads split them
            if len(data) >= 4:
                break
            data += tls.recv(4 - len(data))
        return data


def test_tls_1_2_and_1_3_connect_and_older_versions_are_refused(material, secure_broker):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        connack = tls_handshake(material, secure_broker.port, version)
        assert connack[0] == 0x20  # CONNACK
        assert connack[3] == 0  # reason code: success
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            tls_handshake(material, secure_broker.port, version)


# --- files ---------------------------------------------------------------------------


def test_create_material_twice_changes_nothing_and_adds_a_new_identity(material, tmp_path):
    directory = copy_material(material, tmp_path / "copy")
    before = snapshot(directory)
    create_material(directory, IDENTITIES, TOPICS)
    assert snapshot(directory) == before
    extra = Identity("extra", calls=(RECEIVER,))
    again = create_material(directory, [*IDENTITIES, extra], TOPICS)
    after = snapshot(directory)
    for name in ("extra.crt", "extra.key", "extra.password"):
        assert name in after
        assert name not in before
    for name, data in before.items():
        if name.endswith((*SECRET_SUFFIXES, ".crt")):
            assert after[name] == data, name
    assert "user extra\n" in after["acl"].decode()
    lines = after["passwords"].decode().splitlines()
    assert lines[:4] == before["passwords"].decode().splitlines()  # hashes kept as they were
    assert lines[4].startswith("extra:$7$101$")
    assert verify_password(again.password("extra"), lines[4].partition(":")[2])
    subject = openssl("x509", "-in", str(again.cert("extra")), "-noout", "-subject")
    assert b"CN=extra" in subject.replace(b" ", b"")
    openssl("verify", "-CAfile", str(again.ca_cert), str(again.cert("extra")))


def test_a_certificate_from_another_ca_is_renewed_and_the_rest_kept(material, tmp_path):
    directory = copy_material(material, tmp_path / "copy")
    foreign = create_material(tmp_path / "foreign", IDENTITIES, TOPICS)
    shutil.copy(foreign.cert("client"), directory / "client.crt")
    shutil.copy(foreign.key("client"), directory / "client.key")
    before = snapshot(directory)
    renewed = create_material(directory, IDENTITIES, TOPICS)
    after = snapshot(directory)
    assert after["client.crt"] != before["client.crt"]
    openssl("verify", "-CAfile", str(renewed.ca_cert), str(renewed.cert("client")))
    for name in ("ca.crt", "ca.key", "server.crt", "sender.crt", "client.password"):
        assert after[name] == before[name], name


def test_force_replaces_every_secret(material, tmp_path):
    directory = copy_material(material, tmp_path / "copy")
    before = snapshot(directory)
    create_material(directory, IDENTITIES, TOPICS, force=True)
    after = snapshot(directory)
    for name, data in before.items():
        if name.endswith(SECRET_SUFFIXES):
            assert after[name] != data, name


def test_file_modes(material):
    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    m = material
    for identity in IDENTITIES:
        assert mode(m.key(identity.name)) == 0o600
        assert mode(m.password_path(identity.name)) == 0o600
        assert m.password_path(identity.name).stat().st_uid == os.geteuid()
    assert mode(m.ca_key) == 0o600
    group = broker_group()
    broker_files = (m.ca_cert, m.server_cert, m.server_key, m.passwords, m.acl)
    if group is None:
        assert mode(m.directory) == 0o700
        assert mode(m.server_key) == mode(m.passwords) == 0o600
    else:
        assert mode(m.directory) == 0o750
        assert m.directory.stat().st_gid == group
        for path in broker_files:
            assert (mode(path), path.stat().st_gid) == (0o640, group), path.name


def test_reserved_names_and_missing_material_are_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="reserved"):
        create_material(tmp_path / "m", [Identity("ca")], TOPICS)
    with pytest.raises(ConfigurationError, match="create_material first"):
        rotate_password(tmp_path / "empty", "client", IDENTITIES, TOPICS)


def test_openssl_errors_say_why(monkeypatch, tmp_path):
    with pytest.raises(ConfigurationError, match="x509 failed") as caught:
        openssl("x509", "-in", str(tmp_path / "missing.crt"))
    assert "missing.crt" in str(caught.value)  # openssl's own stderr
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(ConfigurationError, match="openssl command is needed"):
        create_material(tmp_path / "m", IDENTITIES, TOPICS)


def test_render_secure_config(tmp_path):
    text = render_secure_config(
        SECURE_CONF.read_text(),
        port=18883,
        bind="127.0.0.1",
        secure_dir=tmp_path / "s",
        data_dir=tmp_path / "d",
    )
    assert "/mosquitto/" not in text
    settings = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "listener 18883 127.0.0.1" in settings
    assert f"password_file {tmp_path}/s/passwords" in settings
    assert f"acl_file {tmp_path}/s/acl" in settings
    assert f"keyfile {tmp_path}/s/server.key" in settings
    assert f"persistence_location {tmp_path}/d/" in settings
    for line in ("allow_anonymous false", "require_certificate true", "tls_version tlsv1.2"):
        assert line in settings


@pytest.mark.timeout_s(90)
async def test_rotate_password_refuses_the_old_one(material):
    directory = copy_material(material, material.directory.parent / "rotated")
    broker = SecureMosquitto(SECURE_CONF, directory)
    broker.start()
    try:
        old = client_settings(Material(directory), "receiver", port=broker.port)
        assert await can_connect(old)
        other = snapshot(directory)
        rotated = rotate_password(directory, "receiver", IDENTITIES, TOPICS)
        new = client_settings(rotated, "receiver", port=broker.port)
        assert new.password != old.password
        after = snapshot(directory)
        changed = {name for name in after if after[name] != other[name]}
        assert changed == {"receiver.password", "passwords"}

        # SIGHUP: the broker rereads the password file (as the mosquitto user when root)
        broker.reload()
        deadline = time.monotonic() + 10
        while not await can_connect(new):
            assert time.monotonic() < deadline, "the new password was not accepted after SIGHUP"
            await asyncio.sleep(0.1)
        assert not await can_connect(old)

        broker.stop()
        broker.start()
        assert await can_connect(new)
        assert not await can_connect(old)
        assert await can_connect(client_settings(rotated, "sender", port=broker.port))
    finally:
        broker.close()
