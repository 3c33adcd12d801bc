"""The ``mqttpush`` command: serve the seed's agents, run its client, call any operation.

Exit codes: 0 success, 1 unexpected error, 2 bad arguments, 3 broker unreachable,
4 timeout, 5 remote error, 6 task failed, 7 refused by the broker's security
(credentials, TLS certificate or ACL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import uuid
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
from mqttpush.tools.parser import build_parser
from mqttpush.tools.store import store_command

if TYPE_CHECKING:
    import argparse

    from mqttpush.agent.base import Agent

__all__ = ["main"]

EXIT_ERROR, EXIT_USAGE, EXIT_BROKER, EXIT_TIMEOUT, EXIT_REMOTE, EXIT_TASK = 1, 2, 3, 4, 5, 6
EXIT_SECURITY = 7


def _bench(args: argparse.Namespace) -> int:
    from mqttpush.tools.bench import Options, run_bench  # noqa: PLC0415 - only this command needs it

    options = Options.quick() if args.quick else Options()
    modes = [mode for mode in ("overload", "soak") if getattr(args, mode)]
    run_bench(
        config=args.config,
        options=options.with_settings(args.set),
        json_path=args.json,
        chart_path=args.chart,
        command=" ".join(["mqttpush", *sys.argv[1:]]),
        only=[*(args.only or ()), *modes],
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
        from mqttpush.tools.brokercmd import dev_broker_command  # noqa: PLC0415

        return dev_broker_command(args)
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
    args = build_parser().parse_args(argv)
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
