"""Broadcast: one sender task to several endpoints, and endpoints with filters, on Mosquitto."""

from __future__ import annotations

import io
import json

import pytest

from mqttpush import Fabric
from mqttpush.tools.cli import main
from mqttpush.tools.demo import PushSender, expected_notifications
from mqttpush.tools.demo.broadcast import render, run_broadcast

SENDER = "sender@fame.fabric"


async def test_three_receivers_get_the_nine_and_filtered_endpoints_their_share(settings):
    async with Fabric(settings) as fabric:
        sender = await fabric.serve(PushSender(count=9, interval=0), SENDER)
        out = io.StringIO()
        result = await run_broadcast(settings, 3, out=out)
    endpoints = result["endpoints"]
    assert list(endpoints) == [
        "receiver-1@fame.fabric",
        "receiver-2@fame.fabric",
        "receiver-3@fame.fabric",
        "finals@fame.fabric",
        "evens@fame.fabric",
    ]
    for i in (1, 2, 3):
        got = endpoints[f"receiver-{i}@fame.fabric"]
        assert got["notifications"] == expected_notifications(9)
        assert got["seq"] == list(range(1, 11))
        assert got["final"] == "completed"
        assert got["deliveries"] == {"delivered": 10}
    finals = endpoints["finals@fame.fabric"]
    assert (finals["notifications"], finals["seq"], finals["final"]) == ([], [10], "completed")
    assert finals["deliveries"] == {"delivered": 1}  # the others were not even tracked
    evens = endpoints["evens@fame.fabric"]
    assert evens["seq"] == [2, 4, 6, 8]
    assert evens["filter"] == {"data": {"parity": "even"}}
    assert evens["deliveries"] == {"delivered": 4}
    lines = out.getvalue().splitlines()
    assert "receiver-2@fame.fabric  #9 working   Notification #9" in lines
    assert len(lines) == 3 * 10 + 1 + 4
    assert json.loads(render(result)) == result
    assert sender.deliveries.summary(result["task_id"]) == {"delivered": 3 * 10 + 1 + 4}


@pytest.mark.parametrize("count", ["0", "101", "x"])
def test_the_receivers_option_is_checked(count, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--receivers", count])
    assert exited.value.code == 2
    assert "--receivers" in capsys.readouterr().err
