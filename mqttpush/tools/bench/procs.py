"""Benchmark worker processes: start one, wait until it is ready, read its result.

A worker is ``python -m mqttpush.tools.bench.worker ROLE ARGS_JSON``. It prints ``READY``
once it can take traffic, then one ``RESULT {json}`` line when it is done. A worker
that serves until stopped gets SIGTERM. Its stderr goes to a log file, so a failure
can be read afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Self

from mqttpush.errors import MqttPushError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["BenchError", "Worker"]

_READY = "READY"
_TICKS = os.sysconf("SC_CLK_TCK")
_RESULT = "RESULT "


class BenchError(MqttPushError):
    """A benchmark worker failed, stopped early, or took too long."""


class Worker:
    """One worker process running ``role`` with ``args``.

    Args:
        role: A role name from :mod:`mqttpush.tools.bench.worker`.
        args: The role's arguments (JSON-serialisable).
        log_dir: Where the worker's stderr is written (``{role}-{pid}.log``).
        env: Extra environment variables.
    """

    def __init__(
        self, role: str, args: dict[str, Any], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.role = role
        self._args = args
        self._log_dir = log_dir
        self._env = env or {}
        self._proc: asyncio.subprocess.Process | None = None
        self.log_path: Path | None = None

    async def start(self, *, ready_within: float = 30.0) -> Self:
        """Start the process and wait for ``READY``."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / f"{self.role}-{os.getpid()}-{id(self):x}.log"
        self.log_path = log_path
        with log_path.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mqttpush.tools.bench.worker",
                self.role,
                json.dumps(self._args),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**os.environ, **self._env},
            )
        line = await self._line(ready_within)
        if line != _READY:
            raise BenchError(f"worker {self.role} did not start: {line!r} ({self._where()})")
        return self

    @property
    def pid(self) -> int:
        """The worker's process id."""
        if self._proc is None:
            raise BenchError(f"worker {self.role} is not started")
        return self._proc.pid

    def _where(self) -> str:
        return f"see {self.log_path}"

    async def _line(self, timeout: float) -> str:
        if self._proc is None or self._proc.stdout is None:
            raise BenchError(f"worker {self.role} is not started")
        try:
            async with asyncio.timeout(timeout):
                raw = await self._proc.stdout.readline()
        except TimeoutError:
            raise BenchError(
                f"worker {self.role}: nothing within {timeout:g} s ({self._where()})"
            ) from None
        if not raw:
            code = await self._proc.wait()
            raise BenchError(f"worker {self.role} exited with {code} ({self._where()})")
        return raw.decode().strip()

    def go(self, line: str = "GO") -> None:
        """Tell a worker that waits for the start signal to begin (or send it ``line``)."""
        if self._proc is None or self._proc.stdin is None:
            raise BenchError(f"worker {self.role} is not started")
        self._proc.stdin.write(f"{line}\n".encode())

    def cpu_seconds(self) -> float:
        """The worker's CPU time so far (user + system, all threads), from ``/proc``."""
        fields = self._proc_file("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def rss_kb(self) -> int:
        """The worker's resident memory now, in KiB, from ``/proc``."""
        for line in self._proc_file("status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError(f"worker {self.role}: no VmRSS in /proc")

    def _proc_file(self, name: str) -> str:
        try:
            with open(f"/proc/{self.pid}/{name}", encoding="ascii") as file:
                return file.read()
        except OSError as exc:
            raise BenchError(f"worker {self.role}: cannot read /proc ({exc})") from exc

    async def result(self, timeout: float) -> dict[str, Any]:
        """Wait for the worker's result line."""
        while True:
            line = await self._line(timeout)
            if line.startswith(_RESULT):
                value: dict[str, Any] = json.loads(line.removeprefix(_RESULT))
                return value

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the worker (if still running) and wait for it; SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
