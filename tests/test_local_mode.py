"""Local mode as a user drives it: make start, make run, make stop (no Docker)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mqttpush.tools.devbroker import free_port
from tests.conftest import EXPECTED, REPO


def _make(
    *args: str, run_dir: Path, port: int, timeout: float = 90, profile: str = "open"
) -> subprocess.CompletedProcess[str]:
    # As a user's shell would be: nothing inherited from an outer make (make test).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MQTTPUSH_", "MAKE", "MFLAGS"))
        and k not in {"PY", "RUN_DIR", "SECURE_DIR", "PROFILE"}
    }
    settings = ["MODE=local", f"PORT={port}", f"RUN_DIR={run_dir}", f"PROFILE={profile}"]
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args, *settings],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _pids(run_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in run_dir.glob("*.pid")}


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

        again = _make("start", run_dir=run_dir, port=port)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
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
            plain = _make("run", run_dir=run_dir, port=port, profile="open")
            assert plain.returncode != 0
            assert f"cannot connect to the MQTT broker at 127.0.0.1:{port}" in plain.stderr
            pids = _pids(run_dir)
            stopped = _make("stop", run_dir=run_dir, port=port, profile="secure")
            assert stopped.returncode == 0, stopped.stderr
            deadline = time.monotonic() + 15
            while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(_alive(pid) for pid in pids.values())
        finally:
            for pid in _pids(run_dir).values():  # only what this test started
                if _alive(pid):
                    os.kill(pid, 9)
