"""The command line of ``mqttpush``: its subcommands, their options and argument types."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from mqttpush.tools.store import add_store_parser

__all__ = ["SUMMARY", "build_parser"]

SUMMARY = "The mqttpush command: serve the seed's agents, run its client, call any operation."


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``mqttpush`` subcommand and its options."""
    parser = argparse.ArgumentParser(prog="mqttpush", description=SUMMARY)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--profile", default=None, help="settings profile in config/ (default: $MQTTPUSH_PROFILE)"
    )
    parser.add_argument(
        "--brokers",
        default=None,
        help="broker cluster nodes, comma-separated host:port or mqtt[s]://host:port "
        "(default: broker.servers, else broker.host and broker.port)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an agent until SIGTERM or SIGINT")
    serve.add_argument("agent", choices=["sender", "receiver"])
    serve.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port"
    )
    run = sub.add_parser("run", help="run the seed's client and print the notifications as JSON")
    run.add_argument(
        "--envelopes", action="store_true", help="also print every message's metadata to stderr"
    )
    run.add_argument(
        "--receivers", type=_receivers, default=None, metavar="N",
        help="broadcast: one sender task to N endpoints (1-100) and two filtered ones",
    )  # fmt: skip
    watch = sub.add_parser("watch", help="follow push notifications live")
    watch.add_argument("address", nargs="?", help="only those sent to this address")
    watch.add_argument("--count", type=int, default=None, help="stop after this many")
    agents = sub.add_parser("agents", help="list the agents online and offline (presence cards)")
    agents.add_argument("--wait", type=float, default=1.0, help="seconds to collect cards")
    agents.add_argument("--json", action="store_true", help="print the cards as JSON")
    config = sub.add_parser("config", help="settings")
    config.add_argument("action", choices=["show"], help="show: print the effective settings")
    call = sub.add_parser("call", help="call an operation and print its JSON result")
    call.add_argument("address", help="agent address, e.g. sender@fame.fabric")
    call.add_argument("method", help="operation name, e.g. get_task_status")
    call.add_argument("--params", default="{}", help="params as a JSON object (default: {})")
    call.add_argument(
        "--timeout", type=_seconds, default=None, help="seconds to wait for the reply (> 0)"
    )
    broker = sub.add_parser(
        "dev-broker", help="run mosquitto in the foreground with the repository config"
    )
    broker.add_argument("--config", type=Path, default=Path("mosquitto.conf"))
    broker.add_argument("--port", type=int, default=1883)
    broker.add_argument("--bind", default="127.0.0.1")
    broker.add_argument("--ws-port", type=int, default=None, help="also serve MQTT over WebSockets")
    broker.add_argument("--run-dir", type=Path, default=Path(".run"))
    broker.add_argument(
        "--secure-dir", type=Path, default=None, help="TLS, password and ACL files (secure)"
    )
    secure = sub.add_parser("secure", help="the secure profile's certificates and credentials")
    secure.add_argument("action", choices=["init", "rotate"])
    secure.add_argument("identity", nargs="?", help="rotate: whose password to replace")
    secure.add_argument("--dir", type=Path, default=Path(".run/secure"))
    secure.add_argument("--force", action="store_true", help="init: replace everything")
    _add_bench_parser(sub)
    add_store_parser(sub)
    console = sub.add_parser("console", help="serve the live web console on 127.0.0.1")
    console.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free one)")
    console.add_argument("--ws-url", default=None, help="broker WebSocket URL (ws://HOST:9001)")
    spec = sub.add_parser("asyncapi", help="write docs/asyncapi.yaml from the code (or --check)")
    spec.add_argument("--out", type=Path, default=Path("docs/asyncapi.yaml"))
    spec.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    return parser


def _add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``mqttpush bench``: the benchmark suite (docs/benchmarks.md)."""
    bench = sub.add_parser("bench", help="run the benchmark suite against a broker of its own")
    bench.add_argument("--config", type=Path, default=Path("mosquitto.conf"))
    bench.add_argument("--quick", action="store_true", help="tiny counts: check it works")
    bench.add_argument("--json", type=Path, default=Path(".run/bench/results.json"))
    bench.add_argument("--chart", type=Path, default=None, help="also draw a PNG chart here")
    bench.add_argument(
        "--only",
        action="append",
        choices=[
            "push",
            "rpc",
            "scale",
            "memory",
            "seed",
            "priority",
            "filter",
            "pool",
            "pool-failover",
            "cluster-failover",
            "instruments",
            "shape",
            "overload",
            "soak",
        ],
        help="run only this part (repeatable)",
    )
    bench.add_argument("--overload", action="store_true", help="the overload mode alone")
    bench.add_argument("--soak", action="store_true", help="the soak mode alone")
    bench.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change one option of the suite, e.g. soak_rounds=3 (docs/benchmarks.md)",
    )


def _seconds(text: str) -> float:
    """A timeout from the command line: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        # 0 once meant "the default" (10 s) and -1 was taken as is: both say what they mean now
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds above 0")
    return value


def _receivers(text: str) -> int:
    count = int(text)
    if not 1 <= count <= 100:  # noqa: PLR2004 - the documented range
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, not {count}")
    return count
