"""The suite's chart (PNG): every client beside mqttpush, the scale shape, the soak rounds.

Panels are drawn for what the run measured: push throughput, CPU per message and RPC
round trip (p50) per client, as medians of the same run; time per notification and
memory per endpoint across the shape points; resident memory per soak round.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from mqttpush.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.tools.bench.figures import Figure

__all__ = ["draw"]

_NAMES = {
    "native": "raw native", "mqttpush": "mqttpush", "paho": "raw paho",
    "gmqtt": "raw gmqtt", "aiomqtt": "raw aiomqtt", "mqttpush-aiomqtt": "mqttpush\non aiomqtt",
    "mosquitto": "mosquitto\n(C)",
}  # fmt: skip
_RAW, _OURS = "#9aa5b1", "#2f6fb0"


def _find(figures: list[Figure], prefix: str) -> Figure | None:
    return next((f for f in figures if f.name.startswith(prefix)), None)


def _bars(axis: Any, figure: Figure, title: str, unit: str) -> None:  # noqa: ANN401 - matplotlib
    names = list(figure.runs)
    values = [statistics.median(figure.runs[n]) for n in names]
    colours = [_OURS if n.startswith("mqttpush") else _RAW for n in names]
    axis.bar(range(len(names)), values, color=colours)
    for x, value in enumerate(values):
        label = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"  # noqa: PLR2004
        axis.annotate(label, (x, value), ha="center", va="bottom", fontsize=8)
    axis.set_xticks(list(range(len(names))), [_NAMES.get(n, n) for n in names], fontsize=8)
    axis.set_title(title)
    axis.set_ylabel(unit)


def _shape(axis: Any, points: list[Figure]) -> None:  # noqa: ANN401 - matplotlib
    xs = [p.notes["endpoints"] for p in points]
    axis.plot(xs, [p.value for p in points], "o-", color=_OURS, label="µs per notification")
    axis.set_xscale("log")
    axis.set_xticks(xs, [f"{x:,}" for x in xs])
    axis.minorticks_off()
    axis.set_ylim(bottom=0)
    axis.set_xlabel("endpoints")
    axis.set_ylabel("µs per notification")
    axis.set_title("Scale shape (same total per point)")
    twin = axis.twinx()
    twin.plot(xs, [p.notes["receiver_kb_per_endpoint"] for p in points], "s--", color=_RAW)
    twin.set_ylim(bottom=0)
    twin.set_ylabel("receiver KiB per endpoint (grey)")


def _soak(axis: Any, figures: list[Figure]) -> None:  # noqa: ANN401 - matplotlib
    for figure in figures:
        for who, values in figure.runs.items():
            axis.plot(range(1, len(values) + 1), values, "o-", label=who)
    axis.set_ylim(bottom=0)
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.set_xlabel("round")
    axis.set_ylabel("RSS, MB")
    axis.set_title("Soak: resident memory after each round")
    axis.legend()


def draw(figures: list[Figure], path: Path) -> None:
    """Draw the panels the figures allow into ``path`` (needs ``mqttpush[bench]``).

    Raises:
        ConfigurationError: matplotlib is not installed.
    """
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional dependency

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            "the chart needs matplotlib: pip install 'mqttpush[bench]'"
        ) from exc
    panels: list[tuple[str, Any]] = []
    for prefix, title, unit in (
        ("push throughput, 1 sender", "Push throughput (higher is better)", "messages/s"),
        ("push CPU per message, both", "CPU per message, both ends (lower is better)", "µs"),
        ("RPC round trip, sequential, p50", "RPC round trip p50 (lower is better)", "ms"),
    ):
        if (found := _find(figures, prefix)) is not None:
            panels.append(("bars", (found, title, unit)))
    if shape := [f for f in figures if f.name.startswith("shape:")]:
        panels.append(("shape", shape))
    if soak := [f for f in figures if f.name.startswith("soak:") and "RSS" in f.name]:
        panels.append(("soak", soak))
    columns = min(2, max(1, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.2 * rows), squeeze=False)
    cells = [axis for row in axes for axis in row]
    for axis, (kind, data) in zip(cells, panels, strict=False):
        if kind == "bars":
            _bars(axis, *data)
        elif kind == "shape":
            _shape(axis, data)
        else:
            _soak(axis, data)
    for axis in cells[len(panels) :]:
        axis.axis("off")
    if not panels:
        cells[0].text(0.5, 0.5, "no charted figures in this run", ha="center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
