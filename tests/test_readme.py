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


def _docs() -> dict[str, str]:
    paths = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return {str(path.relative_to(REPO)): path.read_text() for path in paths}


def test_links_in_the_docs_stay_inside_the_repository():
    for name, text in _docs().items():
        base = (REPO / name).parent
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path = (base / target).resolve()
            assert path.is_relative_to(REPO), f"{name} links outside: {target}"
            assert path.exists(), f"{name} links to a missing file: {target}"
        assert "shared/design" not in text, f"{name} cites a file outside the repository"


def test_profiles_named_in_the_readme_exist():
    text = (REPO / "README.md").read_text()
    named = set(re.findall(r"--profile (\w+)", text)) | set(re.findall(r"PROFILE=(\w+)", text))
    assert named
    for profile in named:
        assert (REPO / "config" / f"{profile}.toml").is_file(), profile


def test_the_bench_duration_is_told_the_same_everywhere():
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    told = re.search(r"`make bench` runs the benchmark suite \(about ([a-z ]+?)[;:)]", readme)
    assert told is not None
    bench = re.search(r"^bench:.*$", makefile, re.M)
    assert bench is not None
    assert f"(about {told.group(1)})" in bench.group(0)
