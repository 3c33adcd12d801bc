"""The Node tools some tests run (tools/node): installed with `npm ci` on first use.

MQTT.js (whose browser bundle the console serves, vendored), playwright-core (drives
the system's chromium; it never downloads a browser) and @asyncapi/parser. The lock
file pins every version; nothing is fetched again once node_modules is up to date.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "tools" / "node"


def node_tools() -> Path:
    """The folder with an installed node_modules (running `npm ci` when it is missing or stale)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("these tests need Node.js 20+ and npm (apt-get install nodejs npm)")
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_DIR, check=True, timeout=600, env=env,
        )  # fmt: skip
    return NODE_DIR
