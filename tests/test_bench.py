"""The benchmark suite runs end to end (tiny counts) and reports every figure with its baseline."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from mqttpush.tools.bench import Options
from mqttpush.tools.bench.report import table, write_json
from mqttpush.tools.bench.suite import OPT_IN, STEPS, run_suite

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Broker


@pytest.mark.timeout_s(180)  # every part, on a machine that may be shared
async def test_quick_suite_measures_every_figure_against_its_baseline(
    broker: Broker, tmp_path: Path
):
    lines: list[str] = []
    # instruments: tests/test_metrics.py runs it; the pool parts need a PostgreSQL of their own
    parts = [name for name in STEPS if name != "instruments" and name not in OPT_IN]
    figures = await run_suite(
        broker.port, Options.quick(), tmp_path / "logs", lines.append, only=parts
    )
    by_name = {f.name.split(",")[0].split(":")[0]: f for f in figures}
    assert set(by_name) >= {
        "push throughput", "RPC round trip", "RPC throughput", "scale",
        "resident memory of an agent process (mqttpush serve sender", "import time of mqttpush",
        "seed scenario",
    }  # fmt: skip
    for figure in figures:
        assert figure.value >= 0, figure
    with_targets = [f for f in figures if f.name.startswith(("push", "RPC throughput"))]
    with_targets += [f for f in figures if f.name == "RPC round trip, sequential, p50"]
    assert len(with_targets) == 3
    for figure in with_targets:
        assert figure.baseline is not None
        assert figure.baseline > 0
        assert figure.ratio is not None
        assert figure.met is not None
    push = by_name["push throughput"]
    assert push.value > 0
    assert push.notes["lost"] == 0
    assert push.notes["double_handled"] == 0
    scale = next(f for f in figures if f.name.startswith("scale: notifications lost"))
    assert scale.value == 0
    assert scale.met is True
    text = table(figures)
    assert "ratio" in text
    assert "raw aiomqtt" in text
    out = tmp_path / "results.json"
    write_json(figures, out, "mqttpush bench --quick")
    document = json.loads(out.read_text())
    assert document["machine"]["cpus"] >= 1
    assert len(document["figures"]) == len(figures)
    assert all("ratio" in f and "met" in f for f in document["figures"])


@pytest.mark.timeout_s(120)
async def test_priority_and_filter_parts_report_each_class_and_both_costs(
    broker: Broker, tmp_path: Path
):
    lines: list[str] = []
    figures = await run_suite(
        broker.port, Options.quick(), tmp_path / "logs", lines.append, ["priority", "filter"]
    )
    latency = [f for f in figures if f.name.startswith("priority latency")]
    assert [f.name.split(", ")[1] for f in latency] == ["urgent", "high", "normal", "low"]
    # 8 tasks x 20 pushes: 1 in 20 urgent, 2 high, 4 low (by position), the rest normal.
    assert [f.notes["notifications"] for f in latency] == [8, 16, 104, 32]
    assert all(f.value > 0 and f.notes["p95_ms"] >= f.value for f in latency)
    cost = next(f for f in figures if f.name.startswith("sender work per notification"))
    assert cost.baseline is not None
    assert cost.baseline > 0
    assert cost.notes["refused_us"] > 0
    check = next(f for f in figures if f.name.startswith("filter check alone"))
    assert check.value > 0
    assert any("when it refuses" in line for line in lines)
