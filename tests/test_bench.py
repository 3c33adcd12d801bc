"""The benchmark suite runs end to end (tiny counts) and reports every figure with its baseline."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from mqttpush.errors import ConfigurationError
from mqttpush.tools.bench import Options
from mqttpush.tools.bench.compare import LABELS
from mqttpush.tools.bench.report import table, write_json
from mqttpush.tools.bench.suite import OPT_IN, STEPS, run_suite
from mqttpush.tools.bench.tally import TaskCount, merge

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Broker


@pytest.mark.timeout_s(420)  # every part and every client, on a machine that may be shared
async def test_quick_suite_measures_every_figure_against_its_baseline(
    broker: Broker, tmp_path: Path
):
    lines: list[str] = []
    # instruments: tests/test_metrics.py runs it; the pool parts need a PostgreSQL of their
    # own; overload and soak have their own test below
    parts = [name for name in STEPS if name != "instruments" and name not in OPT_IN]
    figures = await run_suite(
        broker.port, Options.quick(), tmp_path / "logs", lines.append, only=parts
    )
    by_name = {f.name: f for f in figures}
    heads = {f.name.split(",")[0].split(":")[0] for f in figures}
    assert heads >= {
        "push throughput", "push CPU per message", "RPC round trip", "RPC throughput",
        "RPC round trip p50", "scale", "shape",
        "resident memory of an agent process (mqttpush serve sender", "import time of mqttpush",
        "seed scenario",
    }  # fmt: skip
    for figure in figures:
        assert figure.value >= 0, figure
    # Every raw client was measured in this run, each beside mqttpush.
    for short in ("raw paho-mqtt", "raw gmqtt", "raw aiomqtt", "mosquitto C clients"):
        versus = by_name[f"push throughput, mqttpush vs {short}"]
        assert versus.baseline is not None
        assert versus.baseline > 0
        assert versus.ratio is not None
    for short in ("raw paho-mqtt", "raw gmqtt", "raw aiomqtt"):
        assert by_name[f"RPC round trip p50, mqttpush vs {short}"].baseline
    assert not any("mosquitto" in name and name.startswith("RPC") for name in by_name)
    with_targets = [
        by_name["push throughput, 1 sender -> 1 receiver, QoS 1, dedup + receipts"],
        by_name["push throughput, mqttpush on the aiomqtt transport"],
        by_name["RPC round trip, sequential, p50"],
        by_name["RPC round trip p50, mqttpush on the aiomqtt transport"],
        by_name["RPC throughput, 64 concurrent callers"],
    ]
    for figure in with_targets:
        assert figure.baseline is not None
        assert figure.baseline > 0
        assert figure.ratio is not None
        assert figure.met is not None
    push = with_targets[0]
    assert push.baseline_label.startswith(LABELS["native"])
    assert push.notes["lost"] == 0
    assert push.notes["double_handled"] == 0
    assert set(push.notes["cpu_us_per_message_send_receive"]) == {
        "native", "mqttpush", "paho", "gmqtt", "aiomqtt", "mqttpush-aiomqtt", "mosquitto",
    }  # fmt: skip
    cpu = by_name["push CPU per message, both ends (sender + receiver processes)"]
    assert cpu.value > 0
    assert cpu.baseline
    scale = next(f for f in figures if f.name.startswith("scale: notifications lost"))
    assert scale.value == 0
    assert scale.met is True
    late = next(f for f in figures if f.name.startswith("scale: notifications late"))
    assert {"lateness_ms_p99", "out_of_order"} <= set(late.notes)
    shape = [f for f in figures if f.name.startswith("shape:")]
    assert [f.notes["endpoints"] for f in shape] == list(Options.quick().shape_points)
    for point in shape:
        assert point.notes["lost"] == 0
        assert point.notes["handled"] == point.notes["notifications"]
        assert "receiver_kb_per_endpoint" in point.notes
    text = table(figures)
    assert "ratio" in text
    assert "raw gmqtt" in text
    out = tmp_path / "results.json"
    write_json(figures, out, "mqttpush bench --quick")
    document = json.loads(out.read_text())
    assert document["machine"]["cpus"] >= 1
    assert len(document["figures"]) == len(figures)
    assert all("ratio" in f and "met" in f for f in document["figures"])


@pytest.mark.timeout_s(240)
async def test_overload_and_soak_modes_count_every_notification_and_sample_memory(
    broker: Broker, tmp_path: Path
):
    options = Options.quick()
    figures = await run_suite(
        broker.port, options, tmp_path / "logs", lambda _: None, ["overload", "soak"]
    )
    by_name = {f.name: f for f in figures}
    burst = next(f for f in figures if f.name.startswith("overload: 8 endpoints x 11"))
    assert burst.notes["expected"] == 8 * 11
    assert burst.notes["handled"] == 8 * 11
    assert burst.notes["calls_answered"] > 0
    for name in (
        "overload: RPCs not answered within their timeout (default 10 s)",
        "overload: notifications lost (never arrived)",
        "overload: endpoints whose final notification was not the last",
    ):
        assert by_name[name].met is not None, name
    assert by_name["overload: RPC latency during the burst, p50"].value > 0
    for who in ("sender", "receiver"):
        rss = by_name[f"soak: {who} RSS after round 2 (vs round 1)"]
        assert rss.baseline
        assert rss.baseline > 0
        assert rss.ratio is not None
        assert len(rss.runs[who]) == options.soak_rounds
        idle = by_name[f"soak: idle CPU of the {who} after the rounds (1 s)"]
        assert idle.value >= 0
        assert idle.met is not None
    soak = by_name["soak: sender RSS after round 2 (vs round 1)"]
    per_round = options.soak_tasks * (options.soak_count // options.soak_tasks + 1)
    assert soak.notes["handled"] == options.soak_rounds * per_round
    assert by_name["soak: notifications lost + handled twice (all rounds)"].value == 0


def test_a_task_count_tells_late_from_lost_and_counts_order():
    count = TaskCount(expected=5)
    assert count.arrived(1, False, 10.0)
    assert count.arrived(3, False, 10.1)
    assert count.arrived(2, False, 10.2)  # below 3: out of order
    assert not count.arrived(2, False, 10.3)  # seen: handled twice
    assert count.arrived(5, True, 10.4)  # the final
    assert count.done.is_set()
    assert count.arrived(4, False, 10.9)  # after the final: late, not lost
    assert count.handled == 5
    assert count.out_of_order == 2
    assert count.late == [pytest.approx(0.5)]
    total = merge([{"late": 1, "lateness": [0.5]}, {"late": 2, "lateness": [0.1, 0.2]}])
    assert total == {"late": 3, "lateness": [0.5, 0.1, 0.2]}


def test_options_take_settings_by_name():
    options = Options.quick().with_settings(["soak_rounds=3", "shape_points=1,10", "drain=0.1"])
    assert (options.soak_rounds, options.shape_points, options.drain) == (3, (1, 10), 0.1)
    assert options.with_settings(["clients=native,paho"]).clients == ("native", "paho")
    with pytest.raises(ConfigurationError, match="no option"):
        options.with_settings(["rounds=3"])
    with pytest.raises(ConfigurationError, match="soak_rounds"):
        options.with_settings(["soak_rounds=many"])
