"""The README's library example runs as written, against the test broker."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_readme_example_runs_and_prints_what_it_says(broker):
    text = (REPO / "README.md").read_text()
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, re.S)
        if "class Greeter" in block
    ]
    env = {
        "MQTTPUSH_BROKER__HOST": broker.host,
        "MQTTPUSH_BROKER__PORT": str(broker.port),
        "PATH": "",
    }
    env["MQTTPUSH_TOPIC_PREFIX"] = "readme/test"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello ada hello ada", "completed {'counted': 3}"]
