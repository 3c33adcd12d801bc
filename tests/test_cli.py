"""The command line, as separate processes against the real broker (as `make run` uses it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from mqttpush import Fabric, Settings
from mqttpush.errors import UsageError
from mqttpush.testing import Collector, FakeHost, eventually
from mqttpush.tools.demo import PushSender, seed_agents
from mqttpush.tools.devbroker import LocalMosquitto, free_port
from tests.conftest import CONFIG, EXPECTED, REPO, make_settings


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
    invalid = _cli(
        "call", "sender@fame.fabric", "get_task_status", "--params",
        '{"task_id": 3, "wait": "soon", "extra": 1}', env=env,
    )  # fmt: skip
    assert invalid.returncode == 5
    # The validation details, field by field, not only "[-32602] Invalid params".
    assert invalid.stderr.strip() == (
        "mqttpush: remote error -32602: Invalid params: task_id: Input should be a valid "
        "string; wait: Input should be a valid number, unable to parse string as a number; "
        "extra: Extra inputs are not permitted"
    )
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


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_a_timeout_not_above_zero_is_refused_with_exit_code_2(broker, timeout):
    # Before: -1 was taken as is, and 0 silently meant the 10 s default.
    env = _env(broker, "cli/timeout")
    result = _cli("call", "sender@fame.fabric", "get_task_status", f"--timeout={timeout}", env=env)
    assert result.returncode == 2
    assert f"argument --timeout: {timeout} must be a number of seconds above 0" in result.stderr


async def test_a_call_with_a_timeout_not_above_zero_is_a_usage_error():
    async with FakeHost() as host:
        for timeout in (0, -1, float("nan"), float("inf")):
            with pytest.raises(UsageError, match="timeout must be a finite number of seconds"):
                await host.remote("a@test.fabric").call("anything", timeout=timeout)
        assert host.published == []  # nothing was sent


@pytest.mark.timeout_s(90)
async def test_a_broker_that_dies_during_run_and_stays_down_is_exit_code_3_in_one_line():
    # Before: about 130 s, 56 "reconnect failed" warnings, then exit 1 "no connection to
    # the broker within 9.98214 s". Now: within the call in flight's timeout (15 s).
    with LocalMosquitto(CONFIG) as mosquitto:
        settings = make_settings(mosquitto.host, mosquitto.port)
        env = _env(mosquitto, settings.topic_prefix)
        async with seed_agents(settings, count=10_000, interval=0.05) as (sender, _):
            run = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mqttpush", "run", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                await eventually(lambda: any(t.pushed >= 3 for t in sender.tasks._tasks.values()))
                mosquitto.kill()  # and it stays down
                died = time.monotonic()
                _, err = await asyncio.wait_for(run.communicate(), 60)
                took = time.monotonic() - died
            finally:
                if run.returncode is None:
                    run.kill()
                    await run.wait()
    lines = err.decode().splitlines()
    assert run.returncode == 3, lines
    assert took < 15 + 3, took  # one poll's timeout (10 s wait + 5 s), and a margin
    ours = [line for line in lines if line.startswith("mqttpush:")]
    assert len(ours) == 1, lines
    assert "no connection to the broker" in ours[0]
    assert sum("reconnect failed" in line for line in lines) <= 1, lines


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
        sys.executable, "-m", "mqttpush", "watch", "receiver@fame.fabric",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    seen: set[int] = set()
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
            # Read until every seq has been printed; a stall at the Receive Maximum never
            # gets there. Re-sends on a busy machine may add lines, so lines are bounded.
            async with asyncio.timeout(30):
                while len(lines) < 1000 and seen != set(range(1, 152)):
                    line = (await watcher.stdout.readline()).decode()
                    assert line, "watch ended early"
                    lines.append(line.rstrip("\n"))
                    if match := re.search(r"#(\d+) (?:working|completed)  ", line):
                        seen.add(int(match.group(1)))
    finally:
        if watcher.returncode is None:
            watcher.terminate()
            await watcher.communicate()
    assert seen == set(range(1, 152))
    assert any(line.endswith("#151 completed  Task completed") for line in lines)


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


def test_help_is_plain_text(broker):
    env = _env(broker, "cli/help")
    commands = ["serve", "run", "watch", "config", "call", "dev-broker", "secure", "bench"]
    for args in [[], *([command] for command in commands)]:
        shown = _cli(*args, "--help", env=env)
        assert shown.returncode == 0, shown.stderr
        assert "``" not in shown.stdout  # no reStructuredText literals
    assert "The mqttpush command: serve" in _cli("--help", env=env).stdout


def test_a_misspelled_variable_is_named_on_stderr(broker):
    env = _env(broker, "cli/typo", MQTTPUSH_BORKER__PORT="1884")
    result = _cli("--profile", "open", "config", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        "ignoring MQTTPUSH_BORKER__PORT: mqttpush has no setting 'borker'; "
        "did you mean MQTTPUSH_BROKER__PORT?"
    ) in result.stderr
    assert json.loads(result.stdout)["broker"]["port"] == broker.port


def test_the_readme_watch_line_is_what_watch_prints():
    readme = (REPO / "README.md").read_text()
    (sample,) = re.findall(r"`(\d\d:\d\d:\d\d\.\d{3}  sender@fame\.fabric -> [^`]+)`", readme)
    shape = (
        r"\d\d:\d\d:\d\d\.\d{3}  sender@fame\.fabric -> receiver@fame\.fabric  "
        r"task [0-9a-f]{32}  #1 working  Notification #1"
    )
    assert re.fullmatch(shape, sample), sample


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
