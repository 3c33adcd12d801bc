"""The suite's output: a table on stdout, a JSON file, and a chart (PNG)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
    """Draw the chart of the figures into ``path`` (needs ``mqttpush[bench]``).

    Raises:
        ConfigurationError: matplotlib is not installed.
    """
    from mqttpush.tools.bench.chart import draw  # noqa: PLC0415 - only with --chart

    draw(figures, path)
