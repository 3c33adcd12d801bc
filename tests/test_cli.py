"""The command line, as separate processes against the real broker (as `make run` uses it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mqttpush import Fabric, Settings
from mqttpush.testing import Collector
from mqttpush.tools.demo import PushSender
from mqttpush.tools.devbroker import free_port
from tests.conftest import EXPECTED, REPO


def _env(broker, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
    env.update(
        MQTTPUSH_BROKER__HOST=broker.host,
        MQTTPUSH_BROKER__PORT=str(broker.port),
        MQTTPUSH_TOPIC_PREFIX=prefix,
    )
    env.update(extra)
    return env


def _cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mqttpush", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def agents(broker, request):
    """The sender and the receiver as background processes, stopped by pid afterwards."""
    prefix = f"cli/{request.node.name[:20]}/{time.monotonic_ns()}"
    env = _env(broker, prefix, MQTTPUSH_DEMO__NOTIFICATION_INTERVAL="0.01")
    procs = [
        subprocess.Popen([sys.executable, "-m", "mqttpush", "serve", which], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for which in ("sender", "receiver")
    ]  # fmt: skip
    deadline = time.monotonic() + 20
    ready = False
    while not ready and time.monotonic() < deadline:  # bounded: wait until both answer
        ready = all(
            _cli(
                "call",
                addr,
                "get_task_status",
                "--params",
                '{"task_id": "probe"}',
                "--timeout",
                "2",
                env=env,
            ).returncode
            == 5
            for addr in ("sender@fame.fabric", "receiver@fame.fabric")
        )
    yield env, procs, ready
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # reap it and close its pipes


def test_run_prints_exactly_the_seed_output(agents):
    env, procs, ready = agents
    assert ready, "agents did not come up"
    result = _cli("run", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED
    for proc, sig in zip(procs, (signal.SIGTERM, signal.SIGINT), strict=True):
        proc.send_signal(sig)  # either signal: a clean, quick shutdown with exit code 0
    logs = []
    for proc in procs:
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        logs.append(err)
    sender_log, receiver_log = logs
    assert "PushSender running task" in sender_log
    assert sender_log.count("PushSender sent notification") == 9
    assert "PushSender completed task" in sender_log
    assert "Configured push notification endpoint for task" in receiver_log
    assert receiver_log.count("PushReceiver got notification") == 10  # nine and the final one


def test_call_prints_results_and_maps_errors_to_exit_codes(agents, broker):
    env, _, ready = agents
    assert ready, "agents did not come up"
    ok = _cli("call", "sender@fame.fabric", "run_task", "--params", '{"task_id": "cli-1"}', env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["task_id"] == "cli-1"
    remote = _cli(
        "call", "sender@fame.fabric", "get_task_status", "--params", '{"task_id": "zzz"}', env=env
    )
    assert remote.returncode == 5
    assert "-32001" in remote.stderr
    timeout = _cli("call", "nobody@fame.fabric", "ping", "--timeout", "0.5", env=env)
    assert timeout.returncode == 4
    assert "timeout" in timeout.stderr
    bad_json = _cli("call", "sender@fame.fabric", "run_task", "--params", "{", env=env)
    assert bad_json.returncode == 2
    bad_address = _cli("call", "no-at-sign", "run_task", env=env)
    assert bad_address.returncode == 2
    assert "name@domain" in bad_address.stderr


def test_unreachable_broker_is_one_clear_line_and_exit_code_3(broker):
    env = _env(broker, "cli/none")
    env["MQTTPUSH_BROKER__PORT"] = str(free_port())
    result = _cli("run", env=env)
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert "cannot connect to the MQTT broker at 127.0.0.1:" in result.stderr


def test_invalid_setting_names_the_setting(broker):
    env = _env(broker, "cli/bad", MQTTPUSH_DEMO__NOTIFICATION_COUNT="-3")
    result = _cli("run", env=env)
    assert result.returncode == 2
    assert "notification_count" in result.stderr


def test_watch_prints_each_notification_readably(agents):
    env, _, ready = agents
    assert ready, "agents did not come up"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "mqttpush", "watch", "receiver@fame.fabric", "--count", "10"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        assert "watching" in watcher.stdout.readline()  # subscribed: safe to start the task
        assert _cli("run", env=env).returncode == 0
        out, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate(timeout=10)
    assert watcher.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 10
    assert "sender@fame.fabric -> receiver@fame.fabric" in lines[0]
    assert lines[0].endswith("#1 working  Notification #1")
    assert lines[-1].endswith("#10 completed  Task completed")


@pytest.mark.timeout_s(60)
async def test_watch_sees_more_notifications_than_the_receive_maximum(broker):
    """150 notifications and the final one: more than the 100 a client may hold unacknowledged."""
    env = _env(broker, f"cli/watch150/{time.monotonic_ns()}")
    settings = Settings.load(
        None,
        topic_prefix=env["MQTTPUSH_TOPIC_PREFIX"],
        broker={"host": broker.host, "port": broker.port},
    )
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mqttpush", "watch", "receiver@fame.fabric", "--count", "151",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        assert b"watching" in await watcher.stdout.readline()  # subscribed: safe to push
        async with Fabric(settings) as fabric:
            await fabric.serve(PushSender(count=150, interval=0), "sender@fame.fabric")
            await fabric.serve(Collector(), "receiver@fame.fabric")
            sender = fabric.remote("sender@fame.fabric")
            await sender.register_push_endpoint(
                config={"task_id": "many", "address": "receiver@fame.fabric"}
            )
            await sender.run_task(task_id="many")
            out, err = await asyncio.wait_for(watcher.communicate(), timeout=30)
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.communicate()
    assert watcher.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == 151
    assert lines[-1].endswith("#151 completed  Task completed")


def test_config_show_prints_effective_settings_with_secrets_masked(broker):
    env = _env(
        broker, "cli/config", MQTTPUSH_BROKER__PASSWORD="hunter2", MQTTPUSH_BROKER__USERNAME="ada"
    )
    result = _cli("--profile", "open", "config", "show", env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["profile"] == "open"
    assert shown["broker"]["port"] == broker.port  # the environment wins over config/open.toml
    assert shown["broker"]["username"] == "ada"
    assert shown["broker"]["password"] == "**********"
    assert "hunter2" not in result.stdout
    assert shown["demo"]["notification_count"] == 9


def test_bad_arguments_exit_2(broker):
    env = _env(broker, "cli/args")
    assert _cli("frobnicate", env=env).returncode == 2
    assert _cli("call", "sender@fame.fabric", env=env).returncode == 2  # no method
    missing = _cli("--profile", "nope", "config", "show", env=env)
    assert missing.returncode == 2
    assert "no file" in missing.stderr


def test_serve_without_a_broker_exits_3_naming_host_and_port(broker):
    env = _env(broker, "cli/serve")
    port = free_port()
    env["MQTTPUSH_BROKER__PORT"] = str(port)
    result = _cli("serve", "sender", env=env)
    assert result.returncode == 3
    assert f"127.0.0.1:{port}" in result.stderr
    assert "make start" in result.stderr


def test_a_failed_task_exits_6_with_the_reason(broker):
    env = _env(broker, f"cli/failed/{time.monotonic_ns()}", MQTTPUSH_RPC__TIMEOUT="1")
    env["MQTTPUSH_DEMO__SENDER_ADDRESS"] = "ghost@fame.fabric"  # nobody serves it
    receiver = subprocess.Popen(
        [sys.executable, "-m", "mqttpush", "serve", "receiver"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        probe = ["call", "receiver@fame.fabric", "get_task_status", "--params", '{"task_id": "p"}']
        while _cli(*probe, env=env).returncode != 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        result = _cli("run", env=env)
        assert result.returncode == 6, result.stderr
        assert "ended failed" in result.stderr
        assert "register_push_endpoint on ghost@fame.fabric" in result.stderr
        assert result.stdout == ""
    finally:
        receiver.kill()
        receiver.communicate(timeout=10)


def test_secure_init_is_repeatable_and_rotate_replaces_one_password(broker, tmp_path):
    env = _env(
        broker, "cli/secure", MQTTPUSH_PROFILE="secure", MQTTPUSH_CONFIG_DIR=str(REPO / "config")
    )
    directory = tmp_path / "secure"
    first = _cli("secure", "init", "--dir", str(directory), env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    secrets = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert {"ca.crt", "ca.key", "passwords", "acl", "client.env", "watch.password"} <= set(secrets)
    assert "MQTTPUSH_BROKER__USERNAME=client" in secrets["client.env"].decode()
    again = _cli("secure", "init", "--dir", str(directory), env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == secrets  # nothing replaced
    rotated = _cli("secure", "rotate", "client", "--dir", str(directory), env=env)
    assert rotated.returncode == 0, rotated.stderr
    after = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert after["client.password"] != secrets["client.password"]
    assert after["passwords"] != secrets["passwords"]
    assert after["sender.password"] == secrets["sender.password"]
    unknown = _cli("secure", "rotate", "nobody", "--dir", str(directory), env=env)
    assert unknown.returncode == 2
    assert "no identity named 'nobody'" in unknown.stderr
