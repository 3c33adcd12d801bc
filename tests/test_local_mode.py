"""Local mode as a user drives it: make start, make run, make stop (no Docker)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mqttpush.tools.devbroker import free_port
from tests.conftest import EXPECTED, REPO


def _make(
    *args: str, run_dir: Path, port: int | None, timeout: float = 90, profile: str | None = "open"
) -> subprocess.CompletedProcess[str]:
    # As a user's shell would be: nothing inherited from an outer make (make test).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MQTTPUSH_", "MAKE", "MFLAGS"))
        and k not in {"PY", "RUN_DIR", "SECURE_DIR", "PROFILE"}
    }
    # PORT or PROFILE left out (None): the running stack's record gives them.
    settings = ["MODE=local", f"RUN_DIR={run_dir}"]
    settings += [f"PORT={port}"] if port is not None else []
    settings += [f"PROFILE={profile}"] if profile is not None else []
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args, *settings],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _record(run_dir: Path) -> dict[str, str]:
    """The running stack's record (.run/stack): mode, profile, port and pids."""
    path = run_dir / "stack"
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _pids(run_dir: Path) -> dict[str, int]:
    record = _record(run_dir)
    return {name: int(record[name]) for name in ("broker", "sender", "receiver") if name in record}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout_s(180)
def test_start_run_stop(tmp_path):
    run_dir = tmp_path / "run"
    port = free_port()
    try:
        early = _make("run", run_dir=run_dir, port=port)
        assert early.returncode != 0
        assert "run 'make start' first" in early.stderr

        started = _make("start", run_dir=run_dir, port=port)
        assert started.returncode == 0, started.stderr
        pids = _pids(run_dir)
        assert set(pids) == {"broker", "sender", "receiver"}
        assert all(_alive(pid) for pid in pids.values())

        twice = _make("start", run_dir=run_dir, port=port)
        assert twice.returncode == 0, twice.stderr
        assert "already running" in twice.stderr
        assert _pids(run_dir) == pids  # no second copy

        run = _make("run", run_dir=run_dir, port=port)
        assert run.returncode == 0, run.stderr
        assert run.stdout == EXPECTED

        verbose = _make("run-verbose", run_dir=run_dir, port=port)
        assert verbose.returncode == 0, verbose.stderr
        assert verbose.stdout == EXPECTED
        assert "/fame.fabric/sender/rpc] qos=1 cid=" in verbose.stderr
        assert "mqttpush-op=push" in verbose.stderr

        logs = _make("logs-sender", run_dir=run_dir, port=port)
        assert logs.stdout.count("PushSender completed task") == 2

        stopped = _make("stop", run_dir=run_dir, port=port)
        assert stopped.returncode == 0, stopped.stderr
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids.values())
        assert _pids(run_dir) == {}
    finally:
        for pid in _pids(run_dir).values():  # only what this test started
            if _alive(pid):
                os.kill(pid, 9)


@pytest.mark.timeout_s(180)
def test_one_record_per_stack_a_quick_stop_and_logs_that_accumulate(tmp_path):
    run_dir = tmp_path / "run"
    port = free_port()
    try:
        started = _make("start", run_dir=run_dir, port=port)
        assert started.returncode == 0, started.stderr
        pids = _pids(run_dir)

        # One record for the stack: its port and profile hold without PORT= or PROFILE=.
        assert _record(run_dir)["port"] == str(port)
        assert _record(run_dir)["profile"] == "open"
        status = _make("status", run_dir=run_dir, port=None, profile=None)
        assert f"local mode, open profile, port {port}" in status.stdout
        assert "sender: running" in status.stdout
        unnamed = _make("run", run_dir=run_dir, port=None, profile=None)
        assert unnamed.returncode == 0, unnamed.stderr
        assert unnamed.stdout == EXPECTED
        logs = _make("logs-sender", run_dir=run_dir, port=None, profile=None)
        assert "PushSender completed task" in logs.stdout
        # A second stack over it is refused at once, saying which one runs.
        other = _make("start", run_dir=run_dir, port=None, profile="secure", timeout=10)
        assert other.returncode != 0
        assert f"another stack runs here (local mode, open profile, port {port})" in other.stderr
        wrong = _make("run", run_dir=run_dir, port=None, profile="secure", timeout=10)
        assert wrong.returncode != 0
        assert f"the running stack is the open profile on port {port}" in wrong.stderr

        began = time.monotonic()
        stopped = _make("stop", run_dir=run_dir, port=None, profile=None)
        took = time.monotonic() - began
        assert stopped.returncode == 0, stopped.stderr
        assert took < 3, f"make stop took {took:.1f} s"
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids.values())
        assert _pids(run_dir) == {}
        assert not (run_dir / "stack").exists()
        gone = _make("status", run_dir=run_dir, port=None, profile=None)
        assert "sender: stopped" in gone.stdout

        # A second start appends to the logs: the first run's lines stay.
        again = _make("start", run_dir=run_dir, port=port)
        assert again.returncode == 0, again.stderr
        log = (run_dir / "sender.log").read_text()
        assert log.count("==== mqttpush: sender started") == 2
        assert log.count("PushSender completed task") == 1
        broker_log = _make("logs-broker", run_dir=run_dir, port=None, profile=None).stdout
        assert "mosquitto version" in broker_log
        assert "Saving in-memory database" not in broker_log  # one a second: left out
        assert "Saving in-memory database" in (run_dir / "broker.log").read_text()
        assert _make("stop", run_dir=run_dir, port=None, profile=None).returncode == 0
    finally:
        for pid in _pids(run_dir).values():  # only what this test started
            if _alive(pid):
                os.kill(pid, 9)


def test_a_port_in_use_is_reported(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _make("start", run_dir=tmp_path / "run", port=port)
    assert result.returncode != 0
    assert f"port {port} is in use" in result.stderr
    assert _pids(tmp_path / "run") == {}


@pytest.mark.timeout_s(180)
def test_secure_profile_start_run_stop():
    # Outside pytest's private tmp root: the broker drops to the mosquitto user, which
    # must reach the certificates, password file and ACL.
    with tempfile.TemporaryDirectory(prefix="mqttpush-local-") as base:
        Path(base).chmod(0o711)
        run_dir = Path(base) / "run"
        port = free_port()
        try:
            started = _make("start", run_dir=run_dir, port=port, profile="secure")
            assert started.returncode == 0, started.stderr
            assert "secure profile" in started.stderr
            secure = run_dir / "secure"
            assert {"ca.crt", "passwords", "acl", "sender.env", "client.env"} <= {
                p.name for p in secure.iterdir()
            }
            run = _make("run", run_dir=run_dir, port=port, profile="secure")
            assert run.returncode == 0, run.stderr
            assert run.stdout == EXPECTED
            # The same broker refuses the open profile's anonymous, plain-TCP client.
            plain = subprocess.run(
                [sys.executable, "-m", "mqttpush", "--profile", "open", "run"],
                env={"PATH": os.environ["PATH"], "MQTTPUSH_BROKER__PORT": str(port)},
                cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert plain.returncode != 0
            assert f"cannot connect to the MQTT broker at 127.0.0.1:{port}" in plain.stderr
            pids = _pids(run_dir)
            stopped = _make("stop", run_dir=run_dir, port=None, profile=None)
            assert stopped.returncode == 0, stopped.stderr
            deadline = time.monotonic() + 15
            while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(_alive(pid) for pid in pids.values())
        finally:
            for pid in _pids(run_dir).values():  # only what this test started
                if _alive(pid):
                    os.kill(pid, 9)
