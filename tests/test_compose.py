"""The container files, checked for structure; .ci/run also runs them on a real engine."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from tests.conftest import REPO


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_three_services_with_a_healthy_broker_first():
    services = _compose()["services"]
    assert set(services) == {"mosquitto", "push-sender", "push-receiver", "push-client"}
    assert services["push-client"]["profiles"] == ["client"]  # run on demand, never by up
    broker = services["mosquitto"]
    assert broker["image"].startswith("eclipse-mosquitto:2")
    assert "./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in broker["volumes"]
    data = [v for v in broker["volumes"] if v.endswith(":/mosquitto/data")]
    assert data
    assert data[0].split(":")[0] in _compose()["volumes"]
    assert broker["healthcheck"]["test"][0] == "CMD"
    assert "mosquitto_pub" in broker["healthcheck"]["test"]
    for name in ("push-sender", "push-receiver"):
        agent = services[name]
        assert agent["build"] == "."
        assert agent["depends_on"]["mosquitto"]["condition"] == "service_healthy"
        assert agent["restart"] == "on-failure"
        assert agent["environment"]["MQTTPUSH_PROFILE"] == "${MQTTPUSH_PROFILE:-open}"
        assert agent["environment"]["MQTTPUSH_BROKER__HOST"] == "mosquitto"
        store = agent["environment"]["MQTTPUSH_AGENT__STORE_PATH"]
        (volume,) = [v for v in agent["volumes"] if v.endswith(":/data")]
        assert store.startswith("/data/")
        assert volume.split(":")[0] in _compose()["volumes"]
    assert services["push-sender"]["command"] == ["serve", "sender"]
    assert services["push-receiver"]["command"] == ["serve", "receiver"]


def test_published_ports_are_bound_to_localhost():
    for service in _compose()["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_dockerfile_is_slim_non_root_and_runtime_only():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users
    assert users[-1] not in {"root", "0"}
    installs = [i.strip() for i in re.findall(r"pip install ([^\n&]+)", text)]
    assert installs == ["."]  # the package alone, without [test]
    assert re.search(r'^ENTRYPOINT \["mqttpush"\]', text, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)


def test_both_compose_versions_read_the_files():
    # Compose v1 (docker-compose 1.29, Debian 12's) refuses a top-level `name:`; the
    # project name comes from scripts/compose.sh (-p) instead.
    for name in ("docker-compose.yml", "docker-compose.secure.yml"):
        assert set(yaml.safe_load((REPO / name).read_text())) == {"services"} | (
            {"volumes"} if name == "docker-compose.yml" else set()
        )
    script = (REPO / "scripts/compose.sh").read_text()
    assert "docker compose version" in script
    assert "docker-compose" in script
    assert "up -d --build\n" in script  # no --wait, which v1 lacks


def test_the_secure_override_mounts_the_material_and_gives_each_agent_its_identity():
    secure = yaml.safe_load((REPO / "docker-compose.secure.yml").read_text())["services"]
    broker = secure["mosquitto"]
    assert "./mosquitto-secure.conf:/mosquitto/config/mosquitto.conf:ro" in broker["volumes"]
    assert "./.run/secure/passwords:/run/secrets-in/passwords:ro" in broker["volumes"]
    assert "--cafile" in broker["healthcheck"]["test"][1]
    mounted = [v.split(":")[0] for v in broker["volumes"]]
    assert "./.run/secure/ca.key" not in mounted
    # The broker's copies go to a tmpfs owned by its user (1883), then the image's own
    # entrypoint and command run.
    taking = ["/usr/local/bin/take-secrets", "/mosquitto/secure", "1883:1883"]
    assert broker["entrypoint"][1:4] == taking
    assert "/mosquitto/secure" in broker["tmpfs"]
    identities = ("sender", "receiver", "client", "watch")
    for service, identity in (("push-sender", "sender"), ("push-receiver", "receiver"),
                              ("push-client", "client")):  # fmt: skip
        agent = secure[service]
        assert agent["env_file"] == f".run/secure/{identity}.env"
        assert all(v.endswith(":ro") for v in agent["volumes"])
        sources = {v.split(":")[0] for v in agent["volumes"]} - {"./scripts/take-secrets.sh"}
        # Its own identity and the CA certificate: no other identity's files, no CA key.
        assert sources == {"./.run/secure/ca.crt"} | {
            f"./.run/secure/{identity}.{kind}" for kind in ("crt", "key", "password")
        }
        others = [i for i in identities if i != identity]
        assert not any(f"/{other}." in source for other in others for source in sources)
        # Copied as root to a tmpfs where NAME.env points, then run as the image's user.
        assert agent["entrypoint"][1:6] == [
            "/usr/local/bin/take-secrets", "/app/.run/secure", "10001:10001", "--drop", "--",
        ]  # fmt: skip
        assert agent["tmpfs"] == ["/app/.run/secure"]
    text = (REPO / "mosquitto-secure.conf").read_text()
    for line in ("allow_anonymous false", "require_certificate true", "listener 8883"):
        assert line in text


def test_take_secrets_hands_the_files_to_the_service_user_only():
    # Outside pytest's private tmp root, which user 10001 could not traverse.
    with tempfile.TemporaryDirectory(prefix="mqttpush-secrets-") as base:
        Path(base).chmod(0o711)
        _take_secrets(Path(base))


def _take_secrets(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "sender.key").write_text("key\n")
    (source / "sender.key").chmod(0o600)  # as on the host: its owner's only
    dest = tmp_path / "secure"
    script = ["sh", str(REPO / "scripts/take-secrets.sh"), str(dest), "10001:10001", "--drop"]
    shown = f"id -u; id -g; cat {dest}/sender.key; stat -c '%u %a' {dest} {dest}/sender.key"
    result = subprocess.run(
        [*script, "--", "sh", "-c", shown],
        env={"PATH": os.environ["PATH"], "TAKE_SECRETS_FROM": str(source)},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if os.geteuid() != 0:  # it starts as root in its container, or refuses
        assert result.returncode == 1
        assert "must start as root" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    # The command ran as 10001, which reads its own copy: 0400 in a 0700 folder.
    assert result.stdout.split("\n") == ["10001", "10001", "key", "10001 700", "10001 400", ""]


def test_each_checkout_gets_its_own_compose_project(tmp_path):
    names = {}
    for folder in ("mqttpush", "wt13", "My Checkout"):
        (tmp_path / folder).mkdir()
        names[folder] = subprocess.run(
            ["bash", "-c", f". {REPO}/scripts/stack.sh && stack_project"],
            cwd=tmp_path / folder, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    assert names == {
        "mqttpush": "mqttpush",
        "wt13": "mqttpush-wt13",
        "My Checkout": "mqttpush-my-checkout",
    }
