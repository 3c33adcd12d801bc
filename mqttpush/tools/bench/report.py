"""The suite's output: a table on stdout, a JSON file, and a chart (PNG)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mqttpush.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.tools.bench.figures import Figure

__all__ = ["machine", "table", "write_chart", "write_json"]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:  # noqa: PLR2004 - no decimals on big numbers
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"  # noqa: PLR2004


def _verdict(figure: Figure) -> str:
    if figure.met is None:
        return ""
    sign = ">=" if figure.better == "higher" else "<="
    goals = []
    if figure.target is not None:
        goals.append(f"{sign} {figure.target:g}x")
    if figure.limit is not None:
        goals.append(f"{sign} {figure.limit:g} {figure.unit}")
    return f"{'met' if figure.met else 'MISSED'} ({', '.join(goals)})"


def table(figures: list[Figure]) -> str:
    """The figures as an aligned text table: value, baseline, ratio, target."""
    rows = [("figure", "unit", "mqttpush", "baseline", "ratio", "target")]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        rows.append((f.name, f.unit, _number(f.value), _number(f.baseline), ratio, _verdict(f)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    baselines = sorted({f"  {f.name}: {f.baseline_label}" for f in figures if f.baseline_label})
    notes = [f"  {f.name}: {json.dumps(f.notes)}" for f in figures if f.notes]
    return "\n".join([*lines, "", "baselines:", *baselines, "", "notes:", *notes])


def write_json(figures: list[Figure], path: Path, command: str) -> None:
    """Write the figures, the machine and the command to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine(),
        "command": command,
        "figures": [f.to_json() for f in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_chart(figures: list[Figure], path: Path) -> None:
    """Draw throughput and latency beside their baselines (needs ``mqttpush[bench]``).

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
    rates = [f for f in figures if f.unit.endswith("/s") and f.baseline is not None]
    latency = [f for f in figures if f.unit == "ms" and f.name.startswith("RPC")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, chosen, title, unit in (
        (left, rates, "Throughput (higher is better)", "per second"),
        (right, latency, "RPC round trip (lower is better)", "ms"),
    ):
        labels = [_short(f.name) for f in chosen]
        xs = range(len(chosen))
        axis.bar([x - 0.2 for x in xs], [f.baseline or 0 for f in chosen], 0.4,
                 label="raw aiomqtt", color="#9aa5b1")  # fmt: skip
        axis.bar([x + 0.2 for x in xs], [f.value for f in chosen], 0.4,
                 label="mqttpush", color="#2f6fb0")  # fmt: skip
        for x, f in zip(xs, chosen, strict=True):
            if f.ratio is not None:
                axis.annotate(f"{f.ratio:.2f}x", (x + 0.2, f.value), ha="center", va="bottom")
        axis.set_xticks(list(xs), labels)
        axis.set_title(title)
        axis.set_ylabel(unit)
        axis.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(name: str) -> str:
    if name.startswith("push"):
        return "push (notifications)"
    if "concurrent" in name:
        return "RPC, 64 callers"
    return name.rsplit(", ", 1)[-1]
