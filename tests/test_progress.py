"""Live progress of `mqttpush run`: drawn on a terminal, absent otherwise."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

from mqttpush.tools.progress import ProgressLine
from tests.conftest import EXPECTED
from tests.seed_procs import seed_env, serve_agents


def test_the_line_counts_each_notification_once_with_rate_and_elapsed():
    now = [100.0]
    out = io.StringIO()
    line = ProgressLine(out, expected=9, clock=lambda: now[0])
    now[0] = 102.0
    for notification_id in ("a", "b", "a", "c"):  # "a" came twice: a repeat
        line.count(notification_id)
    assert line.text() == "received 3/9 notifications  1.5/s  2.0 s"
    line.close()
    assert out.getvalue().endswith("received 3/9 notifications  1.5/s  2.0 s\n")
    assert "\r" in out.getvalue()  # redrawn in place


def _run_on_a_terminal(env: dict[str, str]) -> tuple[str, str, int]:
    """Run the client with stderr on a pseudo-terminal; return stdout, what the terminal got, rc."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mqttpush", "run"],
        env=env, stdout=subprocess.PIPE, stderr=terminal, text=True,
    )  # fmt: skip
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # bounded: read the terminal until the client closes it
        ready, _, _ = select.select([controller], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the client exited and the terminal closed
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=30)
    os.close(controller)
    return out, seen.decode(errors="replace"), proc.returncode


def test_run_draws_progress_on_a_terminal_and_nothing_otherwise(broker):
    env = seed_env(broker, f"progress/{time.monotonic_ns()}",
                   MQTTPUSH_DEMO__NOTIFICATION_INTERVAL="0.15")  # fmt: skip
    with serve_agents(env):
        out, terminal, code = _run_on_a_terminal(env)
        assert (out, code) == (EXPECTED, 0)
        states = [part.strip() for part in terminal.replace("\x1b[2K", "").split("\r")]
        drawn = [s for s in states if s.startswith("received ")]
        assert drawn[-1].startswith("received 9/9 notifications  ")
        assert drawn[-1].endswith(" s")
        counts = {s.split()[1] for s in drawn}
        assert len(counts) >= 3, counts  # it moved while the task ran: live, not at the end
        piped = subprocess.run(
            [sys.executable, "-m", "mqttpush", "run"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert (piped.stdout, piped.returncode) == (EXPECTED, 0)
    assert "received" not in piped.stderr
    assert "\r" not in piped.stderr
