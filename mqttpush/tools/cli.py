"""The ``mqttpush`` command: serve the seed's agents, run its client, call any operation.

Exit codes: 0 success, 1 unexpected error, 2 bad arguments, 3 broker unreachable,
4 timeout, 5 remote error, 6 task failed, 7 refused by the broker's security
(credentials, TLS certificate or ACL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqttpush.errors import (
    AccessDeniedError,
    AuthenticationError,
    BrokerUnavailableError,
    ConfigurationError,
    ConnectionLostError,
    InvalidAddressError,
    MqttPushError,
    RpcError,
    RpcTimeoutError,
    TaskFailedError,
    TlsError,
)
from mqttpush.fabric import Fabric
from mqttpush.settings import Settings
from mqttpush.tools.store import add_store_parser, store_command

if TYPE_CHECKING:
    from mqttpush.agent.base import Agent

__all__ = ["main"]

EXIT_ERROR, EXIT_USAGE, EXIT_BROKER, EXIT_TIMEOUT, EXIT_REMOTE, EXIT_TASK = 1, 2, 3, 4, 5, 6
EXIT_SECURITY = 7


def _parser() -> argparse.ArgumentParser:
    # The docstring's reStructuredText literals (``x``) read as plain text in --help.
    summary = __doc__.split("\n\n")[0].replace("``", "")
    parser = argparse.ArgumentParser(prog="mqttpush", description=summary)
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
            "instruments",
        ],
        help="run only this part (repeatable)",
    )
    add_store_parser(sub)
    console = sub.add_parser("console", help="serve the live web console on 127.0.0.1")
    console.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free one)")
    console.add_argument("--ws-url", default=None, help="broker WebSocket URL (ws://HOST:9001)")
    spec = sub.add_parser("asyncapi", help="write docs/asyncapi.yaml from the code (or --check)")
    spec.add_argument("--out", type=Path, default=Path("docs/asyncapi.yaml"))
    spec.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    return parser


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


def _bench(args: argparse.Namespace) -> int:
    from mqttpush.tools.bench import Options, run_bench  # noqa: PLC0415 - only this command needs it

    run_bench(
        config=args.config,
        options=Options.quick() if args.quick else Options(),
        json_path=args.json,
        chart_path=args.chart,
        command=" ".join(["mqttpush", *sys.argv[1:]]),
        only=args.only or (),
    )
    return 0


async def _serve(settings: Settings, which: str) -> None:
    from mqttpush.tools.demo import PushReceiver, PushSender  # noqa: PLC0415 - only this command needs them

    demo = settings.demo
    address = demo.sender_address if which == "sender" else demo.receiver_address
    settings = agent_settings(settings, address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from mqttpush.tools.telemetry import telemetry  # noqa: PLC0415

    async with (
        telemetry(settings) as instruments,
        Fabric(settings, instruments=instruments) as fabric,
    ):
        if which == "sender":
            agent: Agent = PushSender(
                count=demo.notification_count, interval=demo.notification_interval
            )
        else:
            agent = PushReceiver(demo.sender_address, task_timeout=demo.task_timeout)
        await fabric.serve(agent, address)
        stopping = asyncio.create_task(stop.wait())
        failing = asyncio.create_task(fabric.stopped.wait())
        await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
    if fabric.stopped_because is not None:
        raise fabric.stopped_because
    logging.getLogger("mqttpush").info("%s stopped", which)


def agent_settings(settings: Settings, address: str) -> Settings:
    """Settings for serving the agent at ``address``: a fixed client id and a session.

    The broker then keeps the agent's subscriptions and queues its QoS 1 messages while
    it is away (restart, crash), for ``agent.session_expiry`` seconds. A copy of a pool
    (``agent.pool``) gets a client id of its own and no session: a dead copy's session
    would keep taking its share of the requests, queued for nobody.
    """
    broker = settings.broker
    client_id = broker.client_id or f"mqttpush-agent-{address.replace('@', '.')}"
    expiry = broker.session_expiry or settings.agent.session_expiry
    if settings.agent.pool is not None:
        client_id, expiry = f"{client_id}-{uuid.uuid4().hex[:12]}", 0
    update = {"client_id": client_id, "session_expiry": expiry}
    return settings.model_copy(update={"broker": broker.model_copy(update=update)})


async def _run(settings: Settings, *, envelopes: bool) -> Any:  # noqa: ANN401 - JSON result
    from mqttpush.tools.telemetry import telemetry  # noqa: PLC0415

    async with telemetry(settings, serve_metrics=False):  # spans to a file, when asked
        return await _run_client(settings, envelopes=envelopes)


async def _run_client(settings: Settings, *, envelopes: bool) -> Any:  # noqa: ANN401 - JSON result
    from mqttpush.tools.demo import run_client  # noqa: PLC0415

    if not envelopes:
        from mqttpush.tools.progress import with_progress  # noqa: PLC0415

        return await with_progress(settings, lambda: run_client(settings), sys.stderr)
    from mqttpush.tools.watch import tap  # noqa: PLC0415

    subscribed = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        tapping = group.create_task(tap(settings, sys.stderr, subscribed), name="mqttpush-tap")
        await subscribed.wait()
        try:
            return await run_client(settings)
        finally:
            await asyncio.sleep(0.1)  # let the last replies and notifications print
            tapping.cancel()


async def _call(
    settings: Settings, address: str, method: str, params: dict[str, Any], timeout: float | None
) -> Any:  # noqa: ANN401
    async with Fabric(settings) as fabric:
        return await fabric.remote(address).call(method, params, timeout=timeout)


def _run_broker(args: argparse.Namespace) -> int:
    from mqttpush.tools.devbroker import (  # noqa: PLC0415
        mosquitto_command,
        prepare_data_dir,
        render_config,
    )

    args.run_dir.mkdir(parents=True, exist_ok=True)
    conf = args.run_dir / "mosquitto.conf"
    data = prepare_data_dir(args.run_dir / "data")
    if args.secure_dir is not None:
        from mqttpush.tools.security.broker import check_reachable, render_secure_config  # noqa: PLC0415

        check_reachable(args.secure_dir)

        text = render_secure_config(
            args.config.read_text(),
            port=args.port,
            bind=args.bind,
            secure_dir=args.secure_dir,
            data_dir=data,
        )
    else:
        text = render_config(
            args.config.read_text(), port=args.port, bind=args.bind, data_dir=data,
            ws_port=args.ws_port,
        )  # fmt: skip
    conf.write_text(text)
    command = mosquitto_command(conf)
    os.execv(command[0], command)  # noqa: S606 - replace this process: its pid is the broker's


def _describe_remote_error(exc: RpcError) -> str:
    """One line for a JSON-RPC error: its code, message and details.

    Validation details (a list of ``{"loc": [...], "msg": ...}``, as an agent sends for
    ``-32602 Invalid params``) read as ``field: problem; ...``; other data as JSON.
    """
    line = f"remote error {exc.code}: {exc.message}"
    data = exc.data
    if (
        isinstance(data, list)
        and data
        and all(isinstance(item, dict) and "msg" in item for item in data)
    ):
        problems = [
            f"{'.'.join(str(part) for part in item.get('loc') or ()) or 'params'}: {item['msg']}"
            for item in data
        ]
        return f"{line}: {'; '.join(problems)}"
    return f"{line} {json.dumps(data)}" if data is not None else line


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with ``--brokers`` over ``broker.servers`` when given."""
    if args.brokers is None:
        return Settings.load(args.profile)
    # Only this field: the rest of the broker section still comes from the profile.
    return Settings.load(args.profile, broker={"servers": args.brokers})


def _dispatch_without_settings(args: argparse.Namespace) -> int | None:
    """Run the commands that need no loaded settings; None for the others."""
    if args.command == "dev-broker":
        return _run_broker(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "asyncapi":
        from mqttpush.tools.asyncapi import asyncapi_command  # noqa: PLC0415

        return asyncapi_command(args.out, check=args.check)
    if args.command == "secure":
        from mqttpush.tools.security.commands import secure_command  # noqa: PLC0415

        # The material may not exist yet: its paths are not needed to create it.
        unset = {"ca_file": None, "cert_file": None, "key_file": None, "password_file": None}
        settings = Settings.load(args.profile, broker=unset)
        return secure_command(settings, args.action, args.identity, args.dir, force=args.force)
    return None


def _observe(settings: Settings, args: argparse.Namespace) -> bool:
    """Run the commands that only look at the system (watch, agents, console)."""
    if args.command == "watch":
        from mqttpush.tools.watch import watch  # noqa: PLC0415

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(watch(settings, args.address, sys.stdout, count=args.count))
    elif args.command == "agents":
        from mqttpush.tools.agents import list_agents, render_agents  # noqa: PLC0415

        print(render_agents(asyncio.run(list_agents(settings, args.wait)), as_json=args.json))
    elif args.command == "console":
        from mqttpush.tools.console import serve_console  # noqa: PLC0415

        ws_url = args.ws_url or f"ws://{settings.broker.host}:9001"
        asyncio.run(serve_console(settings, host="127.0.0.1", port=args.port, ws_url=ws_url))
    else:
        return False
    return True


def _dispatch(args: argparse.Namespace) -> int:
    if (code := _dispatch_without_settings(args)) is not None:
        return code
    settings = _settings(args)
    if getattr(args, "metrics_port", None) is not None:
        settings = settings.model_copy(
            update={"metrics": settings.metrics.model_copy(update={"port": args.metrics_port})}
        )
    if _observe(settings, args):
        return 0
    if args.command == "store":
        store_command(settings, args.action, args.url)
    elif args.command == "serve":
        asyncio.run(_serve(settings, args.agent))
    elif args.command == "run" and args.receivers is not None:
        from mqttpush.tools.demo.broadcast import broadcast_command  # noqa: PLC0415

        broadcast_command(settings, args.receivers)
    elif args.command == "run":
        print(json.dumps(asyncio.run(_run(settings, envelopes=args.envelopes)), indent=2))
    elif args.command == "config":
        shown = {
            "profile": args.profile or os.environ.get("MQTTPUSH_PROFILE"),
            **settings.model_dump(mode="json"),
        }
        print(json.dumps(shown, indent=2))  # SecretStr values print masked
    else:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            print(f"mqttpush: --params is not valid JSON: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(params, dict):
            print("mqttpush: --params must be a JSON object", file=sys.stderr)
            return EXIT_USAGE
        result = asyncio.run(_call(settings, args.address, args.method, params, args.timeout))
        print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one return per exit code
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _dispatch(args)
    except (ConfigurationError, InvalidAddressError) as exc:
        print(f"mqttpush: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (AuthenticationError, TlsError, AccessDeniedError) as exc:
        print(f"mqttpush: {exc}", file=sys.stderr)
        return EXIT_SECURITY
    except (BrokerUnavailableError, ConnectionLostError) as exc:  # unreachable, or went away
        print(f"mqttpush: {exc} (is the broker running? try 'make start')", file=sys.stderr)
        return EXIT_BROKER
    except RpcTimeoutError as exc:
        print(f"mqttpush: timeout: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except RpcError as exc:
        print(f"mqttpush: {_describe_remote_error(exc)}", file=sys.stderr)
        return EXIT_REMOTE
    except TaskFailedError as exc:
        print(f"mqttpush: {exc}", file=sys.stderr)
        return EXIT_TASK
    except MqttPushError as exc:
        print(f"mqttpush: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
