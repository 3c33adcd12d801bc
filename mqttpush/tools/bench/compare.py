"""Push and RPC, each against raw baselines on every client, measured in the same run.

Each repeat measures, back to back: the raw native transport, mqttpush (on the native
transport, the default), raw paho-mqtt, raw gmqtt, raw aiomqtt, mqttpush on the aiomqtt
transport, and Mosquitto's C clients (throughput only), so a machine that gets busier
affects them alike. mqttpush's figures are printed against the raw native transport
(the primary baseline: the same client, without mqttpush) and against every other
client; mqttpush on aiomqtt against raw aiomqtt.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.run import REFERENCE_PUSH_RATE, median

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.tools.bench.run import Run

__all__ = ["LABELS", "push", "rpc"]

LABELS = {
    "native": "raw native transport (mqttpush's MQTT client alone, through the transport seam)",
    "paho": "raw paho-mqtt (its network thread, callbacks)",
    "gmqtt": "raw gmqtt (asyncio callbacks)",
    "aiomqtt": "raw aiomqtt",
    "mosquitto": "mosquitto_pub -> mosquitto_sub (Mosquitto's C clients: the ceiling)",
}
SHORT = {"native": "raw native", "paho": "raw paho-mqtt", "gmqtt": "raw gmqtt",
         "aiomqtt": "raw aiomqtt", "mosquitto": "mosquitto C clients"}  # fmt: skip
OURS_AIOMQTT = "mqttpush-aiomqtt"


async def _retried(
    run: Run, what: str, measure: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """One measurement; a worker that fails is reported, and the run made once more."""
    try:
        return await measure()
    except BenchError as exc:
        run.echo(f"  {what} failed, measured again: {exc}")
        return await measure()


def _clients(run: Run, *, rpc: bool = False) -> list[str]:
    return [c for c in run.options.clients if c in LABELS and not (rpc and c == "mosquitto")]


async def push(run: Run) -> list[Figure]:
    """Push throughput and CPU per message: mqttpush and every raw client, interleaved."""
    results: dict[str, list[dict[str, Any]]] = {}
    clients = _clients(run)
    for _ in range(run.options.repeat):
        for client in clients:
            raw = await _retried(run, f"raw {client} push", partial(run.raw_push, client))
            results.setdefault(client, []).append(raw)
            mine = {"native": "mqttpush", "aiomqtt": OURS_AIOMQTT}.get(client)
            if mine is not None:
                measured = await _retried(run, f"{mine} push", partial(run.push, client))
                results.setdefault(mine, []).append(measured)
        run.echo("  push/s: " + ", ".join(
            f"{name} {r[-1]['rate']:,.0f} ({r[-1]['cpu_us']:.0f} µs CPU)"
            for name, r in results.items()))  # fmt: skip
    if "mqttpush" not in results:
        results["mqttpush"] = [await run.push("native") for _ in range(run.options.repeat)]
    rate = {k: [r["rate"] for r in v] for k, v in results.items()}
    cpu = {k: [r["cpu_us"] for r in v] for k, v in results.items()}
    ours = results["mqttpush"]
    notes: dict[str, Any] = {
        key: sum(r[key] for r in ours) for key in ("lost", "late", "double_handled",
                                                   "duplicates_dropped")
    }  # fmt: skip
    notes["vs_reference_sdk"] = round(median(rate["mqttpush"]) / REFERENCE_PUSH_RATE, 2)
    notes["messages"] = run.options.push_count
    notes["cpu_us_per_message_send_receive"] = {
        k: [round(median([r["send_cpu_us"] for r in v]), 1),
            round(median([r["receive_cpu_us"] for r in v]), 1)]
        for k, v in results.items()
    }  # fmt: skip
    figures = [
        Figure(
            name="push throughput, 1 sender -> 1 receiver, QoS 1, dedup + receipts",
            unit="notifications/s",
            value=median(rate["mqttpush"]),
            baseline=median(rate["native"]) if "native" in rate else None,
            baseline_label=LABELS["native"] + ", publisher -> subscriber, QoS 1",
            target=0.7,
            runs=rate,
            notes=notes,
        ),
        Figure(
            name="push CPU per message, both ends (sender + receiver processes)",
            unit="µs",
            value=median(cpu["mqttpush"]),
            baseline=median(cpu["native"]) if "native" in cpu else None,
            baseline_label=LABELS["native"] + ", publisher + subscriber",
            better="lower",
            runs=cpu,
        ),
    ]
    for client in clients:
        if client != "native":
            vs = f"mqttpush vs {SHORT[client]}"
            figures.append(
                _versus(f"push throughput, {vs}", "notifications/s", rate, "mqttpush", client)
            )
            figures.append(
                _versus(f"push CPU per message, {vs}", "µs", cpu, "mqttpush", client, lower=True)
            )
    if OURS_AIOMQTT in rate:
        name = "push throughput, mqttpush on the aiomqtt transport"
        unit = "notifications/s"
        figures.append(_versus(name, unit, rate, OURS_AIOMQTT, "aiomqtt", target=0.8))
    return figures


def _versus(
    name: str,
    unit: str,
    values: dict[str, list[float]],
    ours: str,
    client: str,
    *,
    lower: bool = False,
    target: float | None = None,
) -> Figure:
    return Figure(
        name=name,
        unit=unit,
        value=median(values[ours]),
        baseline=median(values[client]),
        baseline_label=LABELS[client],
        better="lower" if lower else "higher",
        target=target,
        runs={ours: values[ours], client: values[client]},
    )


async def rpc(run: Run) -> list[Figure]:
    """RPC round trips (sequential p50/p90/p99) and 64-caller throughput, every client."""
    conc = run.options.concurrency
    seq: dict[str, list[dict[str, Any]]] = {}
    par: dict[str, list[dict[str, Any]]] = {}
    clients = _clients(run, rpc=True)
    for _ in range(run.options.repeat):
        for client in clients:
            for calls, concurrency in ((seq, 1), (par, conc)):
                raw = await _retried(
                    run, f"raw {client} RPC", partial(run.raw_rpc, client, concurrency)
                )
                calls.setdefault(client, []).append(raw)
            ours = {"native": "mqttpush", "aiomqtt": OURS_AIOMQTT}.get(client)
            if ours is not None:
                for calls, concurrency in ((seq, 1), (par, conc)):
                    measured = await _retried(
                        run, f"{ours} RPC", partial(run.rpc, client, concurrency)
                    )
                    calls.setdefault(ours, []).append(measured)
        run.echo("  rpc p50 ms: " + ", ".join(
            f"{k} {v[-1]['p50'] * 1e3:.2f}" for k, v in seq.items()))  # fmt: skip
        run.echo(f"  rpc x{conc} calls/s: " + ", ".join(
            f"{k} {v[-1]['rate']:,.0f}" for k, v in par.items()))  # fmt: skip
    if "mqttpush" not in seq:
        seq["mqttpush"] = [await run.rpc("native", 1) for _ in range(run.options.repeat)]
        par["mqttpush"] = [await run.rpc("native", conc) for _ in range(run.options.repeat)]
    ms = {p: {k: [r[p] * 1e3 for r in v] for k, v in seq.items()} for p in ("p50", "p90", "p99")}
    rate = {k: [r["rate"] for r in v] for k, v in par.items()}
    figures = []
    for pct, target in (("p50", 1.3), ("p90", None), ("p99", None)):
        native = ms[pct].get("native")
        figures.append(
            Figure(
                name=f"RPC round trip, sequential, {pct}",
                unit="ms",
                value=median(ms[pct]["mqttpush"]),
                baseline=median(native) if native else None,
                baseline_label=LABELS["native"]
                + ", request/response (Response Topic + Correlation Data)",
                better="lower",
                target=target,
                runs=ms[pct],
            )
        )
    figures.append(
        Figure(
            name=f"RPC throughput, {conc} concurrent callers",
            unit="calls/s",
            value=median(rate["mqttpush"]),
            baseline=median(rate["native"]) if "native" in rate else None,
            baseline_label=LABELS["native"] + ", the same callers on one connection",
            target=0.8,
            runs=rate,
        )
    )
    for client in clients:
        if client != "native":
            vs = f"mqttpush vs {SHORT[client]}"
            p50 = ms["p50"]
            figures.append(
                _versus(f"RPC round trip p50, {vs}", "ms", p50, "mqttpush", client, lower=True)
            )
            figures.append(
                _versus(f"RPC throughput x{conc}, {vs}", "calls/s", rate, "mqttpush", client)
            )
    if OURS_AIOMQTT in rate:
        on = "mqttpush on the aiomqtt transport"
        # 0.8x the raw client's speed, as a latency: at most 1 / 0.8 = 1.25x its time.
        figures.append(
            _versus(f"RPC round trip p50, {on}", "ms", ms["p50"], OURS_AIOMQTT, "aiomqtt",
                    lower=True, target=1.25)
        )  # fmt: skip
        figures.append(
            _versus(f"RPC throughput x{conc}, {on}", "calls/s", rate, OURS_AIOMQTT, "aiomqtt",
                    target=0.8)
        )  # fmt: skip
    return figures
